"""The one marketplace validation every service uses, and the message a client reads."""

from __future__ import annotations

import pytest

from marketsync.errors import InvalidArgument
from marketsync.marketplaces import validate_marketplace


@pytest.mark.parametrize("marketplace", ["amazon", "walmart"])
def test_our_marketplaces_pass(marketplace: str) -> None:
    assert validate_marketplace(marketplace) == marketplace
    assert validate_marketplace(marketplace, empty_allowed=True) == marketplace


def test_an_unknown_marketplace_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_marketplace("ebay")

    assert refused.value.message == "marketplace: 'ebay' is not one of amazon, walmart"


def test_empty_passes_only_where_it_means_none_or_any() -> None:
    assert validate_marketplace("", empty_allowed=True) == ""
    with pytest.raises(InvalidArgument, match=r"^marketplace: '' is not one of amazon, walmart$"):
        validate_marketplace("")


def test_where_empty_passes_the_message_says_so() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_marketplace("Amazon", empty_allowed=True)

    assert refused.value.message == "marketplace: 'Amazon' is not one of amazon, walmart or empty"


def test_a_huge_value_is_shown_only_in_part() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_marketplace("x" * 100_000)

    assert refused.value.message == f"marketplace: {'x' * 20!r} is not one of amazon, walmart"
