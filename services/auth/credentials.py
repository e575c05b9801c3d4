"""Marketplace credentials of an organization: saved sealed, shown masked, read in clear only
by the sync service.

Masking shows the last 4 characters of each field, as the contract says; a field of 4
characters or fewer is masked entirely, since showing its "last 4" would show all of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from psycopg_pool import AsyncConnectionPool

from marketsync.errors import FailedPrecondition, InvalidArgument, NotFound
from marketsync.identity import Identity
from marketsync.marketplaces import validate_marketplace
from services.auth import store
from services.auth.models import CredentialSummary
from services.auth.vault import Sealed, Vault, VaultError

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "amazon": ("refresh_token", "lwa_app_id", "lwa_client_secret", "seller_id", "marketplace_id"),
    "walmart": ("client_id", "client_secret"),
}
DEFAULTS: dict[str, dict[str, str]] = {"amazon": {"marketplace_id": "ATVPDKIKX0DER"}}
VISIBLE_CHARACTERS = 4


def validate_fields(marketplace: str, fields: Mapping[str, object]) -> dict[str, str]:
    """The complete field set for the marketplace (defaults filled in, values trimmed)."""
    expected = REQUIRED_FIELDS[marketplace]
    unknown = sorted(set(fields) - set(expected))
    if unknown:
        raise InvalidArgument(
            f"credentials: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
            f"{marketplace} credential fields; expected {', '.join(expected)}"
        )
    complete = dict(DEFAULTS.get(marketplace, {}))
    for name, value in fields.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"credentials.{name}: must be a string")
        if value.strip():
            complete[name] = value.strip()
    missing = [name for name in expected if name not in complete]
    if missing:
        raise InvalidArgument(
            f"credentials.{missing[0]}: is required for {marketplace}"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
        )
    return complete


def mask(value: str) -> str:
    if len(value) <= VISIBLE_CHARACTERS:
        return "*" * len(value)
    return "*" * (len(value) - VISIBLE_CHARACTERS) + value[-VISIBLE_CHARACTERS:]


def associated_data(organization_id: int, marketplace: str) -> bytes:
    """Binds a sealed row to its owner: it opens only for this organization and marketplace."""
    return f"api_credentials/v1/{organization_id}/{marketplace}".encode()


class Credentials:
    def __init__(self, pool: AsyncConnectionPool, vault: Vault) -> None:
        self._pool = pool
        self._vault = vault

    async def save(
        self, identity: Identity, marketplace: str, fields: Mapping[str, object]
    ) -> CredentialSummary:
        identity.require_role("admin")
        validate_marketplace(marketplace)
        complete = validate_fields(marketplace, fields)
        sealed = self._vault.seal(
            json.dumps(complete, sort_keys=True).encode("utf-8"),
            associated_data(identity.organization_id, marketplace),
        )
        async with self._pool.connection() as conn:
            is_active, updated_at = await store.upsert_credentials(
                conn,
                organization_id=identity.organization_id,
                marketplace=marketplace,
                sealed=sealed,
            )
        return CredentialSummary(marketplace, is_active, updated_at, _masked(complete))

    async def list_all(self, identity: Identity) -> tuple[CredentialSummary, ...]:
        identity.require_role("admin")
        async with self._pool.connection() as conn:
            rows = await store.list_credentials(conn, identity.organization_id)
        return tuple(
            CredentialSummary(
                marketplace,
                is_active,
                updated_at,
                _masked(self._open(identity.organization_id, marketplace, sealed)),
            )
            for marketplace, is_active, updated_at, sealed in rows
        )

    async def delete(self, identity: Identity, marketplace: str) -> None:
        identity.require_role("admin")
        validate_marketplace(marketplace)
        async with self._pool.connection() as conn:
            deleted = await store.delete_credentials(
                conn, organization_id=identity.organization_id, marketplace=marketplace
            )
        if not deleted:
            raise NotFound(f"marketplace: no {marketplace} credentials are saved")

    async def read_active_credentials(
        self, organization_id: int, marketplace: str
    ) -> dict[str, str]:
        """The clear credentials for a sync; FailedPrecondition (400) if there are none to use."""
        validate_marketplace(marketplace)
        async with self._pool.connection() as conn:
            row = await store.get_credentials(
                conn, organization_id=organization_id, marketplace=marketplace
            )
        return self._open(organization_id, marketplace, usable(marketplace, row))

    def _open(self, organization_id: int, marketplace: str, sealed: Sealed) -> dict[str, str]:
        try:
            plaintext = self._vault.open(sealed, associated_data(organization_id, marketplace))
        except VaultError as exc:
            raise FailedPrecondition(
                f"marketplace: the saved {marketplace} credentials cannot be decrypted with the "
                f"configured keys; an admin must save them again"
            ) from exc
        credentials: dict[str, str] = json.loads(plaintext)
        return credentials


def usable(marketplace: str, row: store.StoredCredentials | None) -> Sealed:
    """The saved credentials a sync can use; FailedPrecondition (400) saying what to do."""
    if row is None:
        raise FailedPrecondition(
            f"marketplace: no {marketplace} credentials are saved; an admin can save them "
            f"with PUT /api/credentials/{marketplace}"
        )
    _, is_active, _, sealed = row
    if not is_active:
        raise FailedPrecondition(
            f"marketplace: the {marketplace} credentials are inactive; an admin can save "
            f"them again with PUT /api/credentials/{marketplace}"
        )
    return sealed


def _masked(fields: Mapping[str, str]) -> dict[str, str]:
    return {name: mask(value) for name, value in sorted(fields.items())}
