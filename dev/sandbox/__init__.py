"""A local stand-in for Amazon SP-API and the Walmart Marketplace API, for development and tests.

It speaks both wire protocols on one port (Amazon under `/auth/o2/token`, `/reports/...`,
`/catalog/...`, `/fba/...`, `/listings/...`; Walmart under `/v3/...`), serves a deterministic
catalogue per account (see `catalogue`), and lets tests switch faults on per account through
`POST /_sandbox/faults` and count and time calls through `GET /_sandbox/stats`.
"""

from dev.sandbox.server import SandboxHandle, start_sandbox

__all__ = ["SandboxHandle", "start_sandbox"]
