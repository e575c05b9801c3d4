"""Domain errors: what a client is told."""

from __future__ import annotations

from marketsync.errors import MAX_MESSAGE_CHARS, InvalidArgument


def test_a_message_repeating_a_huge_value_is_cut_short() -> None:
    message = InvalidArgument(f"marketplace: must be amazon or walmart, got {'x' * 100_000!r}")
    assert len(message.message) == MAX_MESSAGE_CHARS
    assert message.message.startswith("marketplace: must be amazon or walmart, got 'xxx")
    assert message.message.endswith("...")


def test_a_short_message_is_kept_as_it_is() -> None:
    assert InvalidArgument("sku: must not be empty").message == "sku: must not be empty"
