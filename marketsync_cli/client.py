"""The REST API as the command line uses it: one call, the server's message on failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

TIMEOUT_SECONDS = 60


class ApiError(Exception):
    """A call that failed, with the server's message: `marketsync` prints it and exits 1."""


class Api:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self._client = httpx.Client(base_url=url, timeout=TIMEOUT_SECONDS)
        if token:
            self._client.headers["authorization"] = f"Bearer {token}"

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self._client.request(method, path, json=body, params=params)
        except httpx.HTTPError as error:
            raise ApiError(f"cannot reach {self.url}: {error}") from error
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_error:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise ApiError(message or f"{response.status_code} {response.reason_phrase}")
        return answer

    def pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, page after page."""
        page_token = ""
        while True:
            answer = self.call("GET", path, params={**params, "page_token": page_token})
            yield from answer[key]
            page_token = answer["next_page_token"]
            if not page_token:
                return
