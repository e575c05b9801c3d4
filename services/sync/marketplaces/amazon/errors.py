"""What sp_api's and the transport's failures become: a `MarketplaceError` that ends the sync
with a message for the seller, a `Transient` failure to retry, or a `TokenRejected` to fetch a
new access token for."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import SellingApiException

from marketsync.marketplaces import AMAZON
from services.sync.marketplaces.pacing import TokenRejected, Transient
from services.sync.marketplaces.records import MarketplaceError

T = TypeVar("T")


async def translating_failures(operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Runs one attempt, turning the library's and transport's failures into our outcomes."""
    try:
        return await attempt()
    except AuthorizationError as error:
        raise _authorization_failure(error) from error
    except SellingApiException as error:
        raise _api_failure(operation, error) from error
    except json.JSONDecodeError as error:
        # sp_api parses the token answer as JSON without looking at its status first.
        raise Transient("answering token requests without data") from error
    except httpx.TransportError as error:
        raise Transient(f"dropping the connection ({type(error).__name__})") from error


def _authorization_failure(error: AuthorizationError) -> Exception:
    if error.error_code == "invalid_grant":
        return MarketplaceError(
            AMAZON,
            "Amazon rejected the refresh token (invalid_grant): reconnect your Amazon account",
        )
    if error.error_code == "invalid_client":
        return MarketplaceError(
            AMAZON,
            "Amazon rejected the LWA client id or secret (invalid_client): "
            "check lwa_app_id and lwa_client_secret",
        )
    if error.status_code == 429 or error.status_code >= 500:
        return Transient(f"failing to issue access tokens (HTTP {error.status_code})")
    return MarketplaceError(
        AMAZON, f"Amazon refused an access token ({error.error_code}): {error.message}"
    )


def _api_failure(operation: str, error: SellingApiException) -> Exception:
    first = error.error[0] if error.error else {}
    code, message = first.get("code", ""), first.get("message", "")
    details = first.get("details", "")
    if error.code == 429:
        return Transient("throttling")
    if error.code == 403 and "access token" in f"{message} {details}".lower():
        return TokenRejected(details or message)
    if error.code == 403:
        return MarketplaceError(
            AMAZON,
            f"Amazon denied {operation} ({code}: {message}): check that the seller has "
            "authorized this app",
        )
    if error.code in (400, 404, 409, 413, 415):
        return MarketplaceError(AMAZON, f"Amazon refused {operation} ({code}: {message})")
    return Transient(f"failing ({code or 'server error'}: {message})")
