"""Developer tools, never packaged nor copied into the image: the local stack, the sandbox."""

import os

# The stack's children are forked from processes that make gRPC calls (the tests, the bench).
# With gRPC's fork handlers on, a forked child starts gRPC threads of its own, which can find
# their descriptors closed before exec and abort the child (1 spawn in 25 under gRPC load, and
# a `make test` run lost a sync server that way). gRPC reads this when it is imported: hence
# here, before any module of dev imports it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
