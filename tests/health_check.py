"""gRPC's standard health check, typed: types-grpcio-health-checking's HealthStub declares none of
its methods, so the call is made here from its method name and messages instead."""

from __future__ import annotations

import grpc
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

CHECK_METHOD = "/grpc.health.v1.Health/Check"


def serving(address: str, timeout: float = 2) -> bool:
    """Whether the server at `address` reports itself serving as a whole; a server that does not
    answer raises grpc.RpcError."""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary(
            CHECK_METHOD,
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )
        answer = check(HealthCheckRequest(service=""), timeout=timeout)
    return answer.status == HealthCheckResponse.SERVING
