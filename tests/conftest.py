"""Fixtures shared by the test packages: the sandbox marketplace, once per session."""

from collections.abc import Iterator

import pytest

from dev.sandbox import SandboxHandle, start_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox("127.0.0.1", 0) as handle:
        yield handle
