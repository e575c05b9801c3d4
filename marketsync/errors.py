"""Domain errors shared by every service.

Domain and storage code raise these; the server bootstrap turns each into its gRPC status, so
no servicer maps errors by hand and no stack trace ever reaches a client. Messages are read by
people: say what was wrong and what to do about it.
"""

from __future__ import annotations

import grpc

# gRPC carries a status message in a trailer, and Envoy refuses upstream headers past 60 KiB
# (a 502): a message repeating a huge value a client sent is cut short here, once for all.
MAX_MESSAGE_CHARS = 1000


class DomainError(Exception):
    """An error a client caused or can act on."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
