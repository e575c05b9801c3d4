"""`python -m dev.sandbox --port N`: serve the sandbox marketplaces until interrupted."""

from __future__ import annotations

import argparse
import logging

from dev.sandbox.server import SandboxServer


def main() -> None:
    parser = argparse.ArgumentParser(description="Sandbox Amazon SP-API and Walmart API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = SandboxServer((arguments.host, arguments.port))
    logging.getLogger(__name__).info("sandbox marketplaces serving on %s", server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
