"""The gateway serves the OpenAPI document and its docs page, the page lists every operation in a
real browser, and schemathesis finds the running API true to the document: no 5xx, every answer
of the documented status, content type and shape."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Api

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "gateway" / "docs" / "openapi.json"
# The flags of a headless Chromium that reaches nothing but the page asked for.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Swagger UI fetches and renders the document within this much page time.
    "--virtual-time-budget=20000",
)  # fmt: skip
SCHEMATHESIS_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Each would end the session whose token the run uses, so every later call would be a 401.
SESSION_ENDING = ("Logout", "RevokeSession")


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def test_the_gateway_serves_the_document_and_the_docs_page(api: Api) -> None:
    document = api.call("GET", "/openapi.json")
    assert document.status == 200
    assert document.headers["content-type"] == "application/json"
    assert document.body == _document()
    page = api.call("GET", "/docs")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'url: "/openapi.json"' in page.body
    script = api.client.get("/docs/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript"
    assert "SwaggerUIBundle" in script.text  # httpx undoes the gzip encoding, as browsers do


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("the docs page test needs Chromium (Debian package chromium) or root apt-get")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (("update", "-qq"), ("install", "-y", "-qq", "chromium")):
        subprocess.run(
            ["apt-get", *command], env=environment, capture_output=True, timeout=900, check=False
        )
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("apt-get could not install chromium (offline, or dpkg busy)")
    return found


def test_the_docs_page_lists_every_operation_in_chromium(api: Api, tmp_path: Path) -> None:
    chromium = _chromium()
    url = str(api.client.base_url.join("/docs"))

    def browse(*flags: str) -> str:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, url],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        return result.stdout

    dom = browse("--dump-dom")
    listed = re.findall(r'opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"', dom)
    documented = [
        (method.upper(), path)
        for path, methods in _document()["paths"].items()
        for method in methods
    ]
    assert sorted(listed) == sorted(documented)
    screenshot = tmp_path / "docs.png"
    browse("--window-size=1280,1600", f"--screenshot={screenshot}")
    assert screenshot.read_bytes().startswith(b"\x89PNG"), "no screenshot of the docs page"


def test_schemathesis_finds_the_api_true_to_the_document(api: Api, tmp_path: Path) -> None:
    token = api.register()["token"]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"), "run", str(OPENAPI),
            "--url", str(api.client.base_url).rstrip("/"),
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", "5",
            "--checks", ",".join(SCHEMATHESIS_CHECKS),
            *(f"--exclude-operation-id={operation}" for operation in SESSION_ENDING),
            "--generation-database", "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # where it keeps its cache of failures
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr
