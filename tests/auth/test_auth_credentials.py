"""Marketplace credentials: admin-only, sealed at rest, masked in answers, clear for the sync."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from marketsync.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.auth.credentials import Credentials
from services.auth.vault import Vault, generate_key

from .conftest import Join, Signup

pytestmark = pytest.mark.anyio

AMAZON = {
    "refresh_token": "Atzr|refresh-token-secret-1234",
    "lwa_app_id": "amzn1.application-oa2-client.abcd",
    "lwa_client_secret": "lwa-client-secret-9876",
    "seller_id": "A1SELLER",
}
WALMART = {"client_id": "walmart-client-id", "client_secret": "walmart-secret-5555"}


async def raw_rows(pool: AsyncConnectionPool, organization_id: int) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT * FROM api_credentials WHERE organization_id = %s", (organization_id,)
        )
        return await cursor.fetchall()


async def test_save_answers_masked_fields_with_the_default_marketplace_id(
    signup: Signup, credentials: Credentials
) -> None:
    ann = await signup("ann")
    saved = await credentials.save(ann.identity, "amazon", AMAZON)
    assert (saved.marketplace, saved.is_active) == ("amazon", True)
    assert saved.masked == {
        "lwa_app_id": "*" * 29 + "abcd",
        "lwa_client_secret": "*" * 18 + "9876",
        "marketplace_id": "*********0DER",
        "refresh_token": "*" * 26 + "1234",
        "seller_id": "****LLER",
    }


async def test_secrets_are_not_stored_in_clear(
    signup: Signup, credentials: Credentials, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    await credentials.save(ann.identity, "walmart", WALMART)
    (row,) = await raw_rows(pool, ann.identity.organization_id)
    stored = repr(row).encode()
    for secret in (*WALMART.values(), "5555", "client_id"):
        assert secret.encode() not in stored
        assert secret.encode() not in bytes(row[5])  # the ciphertext column itself


async def test_list_delete_and_read_for_the_sync(signup: Signup, credentials: Credentials) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    await credentials.save(ann.identity, "walmart", WALMART)
    await credentials.save(ann.identity, "amazon", AMAZON)
    await credentials.save(ann.identity, "walmart", {**WALMART, "client_secret": "rotated-7777"})
    listed = await credentials.list_all(ann.identity)
    assert [(c.marketplace, c.masked.get("client_secret")) for c in listed] == [
        ("amazon", None),
        ("walmart", "********7777"),
    ]
    assert await credentials.read_active_credentials(org, "walmart") == {
        "client_id": "walmart-client-id",
        "client_secret": "rotated-7777",
    }
    await credentials.delete(ann.identity, "walmart")
    with pytest.raises(NotFound, match="no walmart credentials are saved"):
        await credentials.delete(ann.identity, "walmart")
    with pytest.raises(FailedPrecondition, match="no walmart credentials are saved"):
        await credentials.read_active_credentials(org, "walmart")


async def test_inactive_credentials_are_not_handed_out(
    signup: Signup, credentials: Credentials, pool: AsyncConnectionPool
) -> None:
    ann = await signup("ann")
    await credentials.save(ann.identity, "walmart", WALMART)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE api_credentials SET is_active = false WHERE organization_id = %s",
            (ann.identity.organization_id,),
        )
    with pytest.raises(FailedPrecondition, match="walmart credentials are inactive"):
        await credentials.read_active_credentials(ann.identity.organization_id, "walmart")


async def test_invalid_input_is_refused(signup: Signup, credentials: Credentials) -> None:
    ann = await signup("ann")
    with pytest.raises(InvalidArgument, match="marketplace: 'ebay'"):
        await credentials.save(ann.identity, "ebay", WALMART)
    with pytest.raises(InvalidArgument, match=r"credentials\.seller_id: is required for amazon"):
        await credentials.save(ann.identity, "amazon", {**AMAZON, "seller_id": ""})
    with pytest.raises(InvalidArgument, match="client_id is not amazon"):
        await credentials.save(ann.identity, "amazon", {**AMAZON, "client_id": "x"})
    with pytest.raises(InvalidArgument, match="marketplace: 'ebay'"):
        await credentials.delete(ann.identity, "ebay")


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_only_admins_touch_credentials(
    signup: Signup, credentials: Credentials, join: Join, role: str
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    bob_inside = await join(ann.identity, bob, role)
    with pytest.raises(PermissionDenied):
        await credentials.save(bob_inside, "walmart", WALMART)
    with pytest.raises(PermissionDenied):
        await credentials.list_all(bob_inside)
    with pytest.raises(PermissionDenied):
        await credentials.delete(bob_inside, "walmart")


async def test_an_organization_sees_nothing_of_another(
    signup: Signup, credentials: Credentials
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await credentials.save(ann.identity, "walmart", WALMART)
    assert await credentials.list_all(bob.identity) == ()
    with pytest.raises(NotFound):
        await credentials.delete(bob.identity, "walmart")
    with pytest.raises(FailedPrecondition):
        await credentials.read_active_credentials(bob.identity.organization_id, "walmart")


async def test_a_row_copied_to_another_organization_does_not_open(
    signup: Signup, credentials: Credentials, pool: AsyncConnectionPool
) -> None:
    ann, bob = await signup("ann"), await signup("bob")
    await credentials.save(ann.identity, "walmart", WALMART)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO api_credentials (organization_id, marketplace, key_id, nonce, ciphertext)"
            " SELECT %s, marketplace, key_id, nonce, ciphertext FROM api_credentials"
            " WHERE organization_id = %s",
            (bob.identity.organization_id, ann.identity.organization_id),
        )
    with pytest.raises(FailedPrecondition, match="cannot be decrypted"):
        await credentials.read_active_credentials(bob.identity.organization_id, "walmart")


async def test_key_rotation(
    signup: Signup, pool: AsyncConnectionPool, credentials: Credentials, encryption_key: str
) -> None:
    ann = await signup("ann")
    org = ann.identity.organization_id
    await credentials.save(ann.identity, "walmart", WALMART)
    rotated = Credentials(pool, Vault.from_setting(f"k2:{generate_key()},k1:{encryption_key}"))
    assert await rotated.read_active_credentials(org, "walmart") == WALMART
    await rotated.save(ann.identity, "walmart", WALMART)
    (row,) = await raw_rows(pool, org)
    assert row[3] == "k2"
    with pytest.raises(FailedPrecondition, match="cannot be decrypted"):
        await credentials.read_active_credentials(org, "walmart")
