"""The marketplaces the platform syncs, by the names the API and the stores use."""

from __future__ import annotations

from marketsync.errors import InvalidArgument

AMAZON = "amazon"
WALMART = "walmart"
MARKETPLACES = (AMAZON, WALMART)
# What a client sent is shown only this far: enough to recognise, never a flood.
_SHOWN_CHARACTERS = 20


def validate_marketplace(marketplace: str, *, empty_allowed: bool = False) -> str:
    """The marketplace, when it is one of ours (or empty, where empty means none or any)."""
    if marketplace in MARKETPLACES or (empty_allowed and marketplace == ""):
        return marketplace
    choices = ", ".join(MARKETPLACES) + (" or empty" if empty_allowed else "")
    shown = str(marketplace)[:_SHOWN_CHARACTERS]
    raise InvalidArgument(f"marketplace: {shown!r} is not one of {choices}")
