"""Driving a blocking page iterator from asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from services.sync.marketplaces import pages_in_thread


def test_pages_arrive_in_order_and_the_iterator_is_closed() -> None:
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            yield from range(3)
        finally:
            closed.set()

    async def consume() -> list[int]:
        return [page async for page in pages_in_thread(pages())]

    assert asyncio.run(consume()) == [0, 1, 2]
    assert closed.is_set()


def test_cancelling_while_a_page_is_fetched_stays_a_cancellation() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_pages() -> Iterator[int]:
        entered.set()
        release.wait(5)
        yield 1

    async def consume() -> None:
        async for _ in pages_in_thread(slow_pages()):
            pass

    async def scenario() -> None:
        task = asyncio.create_task(consume())
        await asyncio.to_thread(entered.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

    asyncio.run(scenario())
