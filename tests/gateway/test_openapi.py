"""The OpenAPI document is generated from the protos only (`make openapi`), passes Redocly's lint,
and says what Envoy's transcoder does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "gateway" / "docs" / "openapi.json"
TOOLS = REPO / ".tools"
REDOCLY = "@redocly/cli@2.77.0"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def test_document_matches_the_protos(tmp_path: Path) -> None:
    fresh = tmp_path / "openapi.json"
    subprocess.run(
        [
            sys.executable, str(REPO / "protos" / "openapi.py"),
            str(REPO / "gateway" / "descriptor.pb"), str(fresh),
        ],
        check=True,
    )  # fmt: skip
    assert fresh.read_text() == OPENAPI.read_text(), "stale openapi.json: run `make openapi`"


def _redocly() -> Path:
    redocly = TOOLS / "node_modules" / ".bin" / "redocly"
    if not redocly.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("Redocly CLI needs npm (Node.js), which is not installed")
        subprocess.run(
            [npm, "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", REDOCLY],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return redocly


def test_document_passes_redocly_lint() -> None:
    result = subprocess.run(
        [str(_redocly()), "lint", str(OPENAPI), "--config", str(REPO / "redocly.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_answers_carry_every_field_without_presence() -> None:
    # always_print_primitive_fields: scalars, lists and maps always; messages and `optional`
    # fields only when set.
    product = _document()["components"]["schemas"]["Product"]
    assert {"sku", "price", "inventory_quantity", "listings"} <= set(product["required"])
    assert "created_at" not in product["required"]


def test_ids_are_strings_and_fields_keep_their_proto_names() -> None:
    user = _document()["components"]["schemas"]["User"]["properties"]
    assert user["id"]["type"] == "string"
    register = _document()["paths"]["/api/auth/register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert "organization_name" in body["properties"]


def test_only_register_login_and_the_health_checks_need_no_token() -> None:
    document = _document()
    assert document["security"] == [{"bearer": []}]
    anonymous = {
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
        if operation.get("security") == []
    }
    assert anonymous == {"Register", "Login", "HealthCheck", "ReadinessCheck"}


def test_get_fields_outside_the_path_are_query_parameters() -> None:
    parameters = _document()["paths"]["/api/products"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [
        ("page_size", "query"), ("page_token", "query"), ("marketplace", "query"),
    ]  # fmt: skip


def test_descriptions_come_from_the_proto_comments() -> None:
    operation = _document()["paths"]["/api/sync/{sync_id}"]["get"]
    assert operation["summary"] == "One sync, with its progress counts while it runs"
