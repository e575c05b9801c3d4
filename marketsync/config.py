"""Settings read from the environment, validated once at start-up.

Each service extends `ServiceSettings` with what it alone needs. A missing or unusable value
stops the process with a message naming the variable, before it serves anything.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, PlainValidator, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketsync.identity import HS256, UserTokenKeys, UserTokenSigningKey
from marketsync.keys import (
    PublicKeys,
    key_id,
    named_public_keys_from_text,
    private_key_from_text,
    public_keys_from_text,
)

MIN_SECRET_LENGTH = 32
# gRPC messages between our services and from Envoy: a batch of 1000 products fits easily.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Key settings are parsed once here, so a bad key stops the process naming its variable.
PrivateKey = Annotated[Ed25519PrivateKey, PlainValidator(private_key_from_text)]
UserTokenPublicKeys = Annotated[
    PublicKeys, PlainValidator(lambda text: public_keys_from_text(text, "auth"))
]
ServicePublicKeys = Annotated[PublicKeys, PlainValidator(named_public_keys_from_text)]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    grpc_port: int = Field(ge=0, le=65535)
    grpc_host: str = "[::]"
    log_level: str = "INFO"
    # How user tokens are signed (marketsync.identity). EdDSA: only auth can sign them. HS256:
    # every service holding JWT_SECRET could.
    jwt_algorithm: Literal["HS256", "EdDSA"] = HS256
    # HS256: the HMAC key of user tokens, used as it is.
    jwt_secret: str | None = Field(default=None, min_length=MIN_SECRET_LENGTH)
    # EdDSA: auth's public keys, `key[,key]` (two while a new key replaces the old one).
    jwt_public_keys: UserTokenPublicKeys | None = None
    # The public keys of the services allowed to call this one's internal RPCs, by name:
    # `name:key[,name:key...]`. A service that serves none needs none.
    service_public_keys: ServicePublicKeys = Field(default=PublicKeys(), validate_default=False)
    # Seconds in-flight RPCs get to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # Where Prometheus scrapes this process (marketsync.metrics), on GRPC_HOST: unset serves no
    # metrics (a process started by hand or a test), 0 any free port (logged at start-up).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Seconds between SIGTERM and the stop during which the service reports NOT_SERVING but still
    # serves every call, so no caller meets a refused connection (Kubernetes: deploy/k8s).
    shutdown_drain_seconds: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def one_way_to_check_user_tokens(self) -> Self:
        if self.jwt_algorithm == HS256:
            if self.jwt_secret is None:
                raise ValueError("JWT_SECRET is required with JWT_ALGORITHM=HS256")
            if self.jwt_public_keys:
                raise ValueError("JWT_PUBLIC_KEYS is set but JWT_ALGORITHM is HS256, not EdDSA")
            return self
        if not self.jwt_public_keys:
            raise ValueError("JWT_PUBLIC_KEYS (auth's public key) is required with EdDSA")
        if self.jwt_secret is not None:
            # Unused in this mode, so a pod holding it holds a key it should not have: most
            # likely a Secret left over from HS256, whose holders could all mint tokens.
            raise ValueError("JWT_SECRET must be unset with JWT_ALGORITHM=EdDSA")
        if self.jwt_public_keys.key_ids() & self.service_public_keys.key_ids():
            # The service holding that private key could sign user tokens.
            raise ValueError("a key in JWT_PUBLIC_KEYS is also a service's in SERVICE_PUBLIC_KEYS")
        return self

    def user_token_keys(self) -> UserTokenKeys:
        keys = self.jwt_secret if self.jwt_algorithm == HS256 else self.jwt_public_keys
        assert keys is not None  # one_way_to_check_user_tokens
        return keys


class TokenIssuerSettings(ServiceSettings):
    """The settings of the one service that signs user tokens: auth."""

    # EdDSA: the private key user tokens are signed with; auth's alone.
    jwt_private_key: PrivateKey | None = None

    @model_validator(mode="after")
    def signs_what_the_others_accept(self) -> Self:
        if self.jwt_algorithm == HS256:
            if self.jwt_private_key is not None:
                raise ValueError("JWT_PRIVATE_KEY is set but JWT_ALGORITHM is HS256, not EdDSA")
        elif self.jwt_private_key is None:
            raise ValueError("JWT_PRIVATE_KEY is required with JWT_ALGORITHM=EdDSA")
        elif (
            self.jwt_public_keys is None
            or key_id(self.jwt_private_key.public_key()) not in self.jwt_public_keys.key_ids()
        ):
            raise ValueError(
                "JWT_PRIVATE_KEY's public key is not in JWT_PUBLIC_KEYS: no service would "
                "accept the tokens auth signs"
            )
        return self

    def user_token_signing_key(self) -> UserTokenSigningKey:
        key = self.jwt_secret if self.jwt_algorithm == HS256 else self.jwt_private_key
        assert key is not None  # one_way_to_check_user_tokens, signs_what_the_others_accept
        return key


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read the environment or exit with one line per problem, naming the variable."""
    try:
        return settings_class()
    except ValidationError as exc:
        lines = [f"configuration error in {settings_class.__name__}:"]
        for error in exc.errors():
            variable = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            lines.append(f"  {variable}: {error['msg']}")
        sys.exit("\n".join(lines))
