"""Calls that send and receive bytes as they are (no serializers), typed as such: without
serializers grpc's stubs cannot tell what a multi-callable carries."""

from __future__ import annotations

from grpc import aio


def unary_unary(channel: aio.Channel, method: str) -> aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method)


def stream_unary(channel: aio.Channel, method: str) -> aio.StreamUnaryMultiCallable[bytes, bytes]:
    return channel.stream_unary(method)


def stream_stream(channel: aio.Channel, method: str) -> aio.StreamStreamMultiCallable[bytes, bytes]:
    return channel.stream_stream(method)
