"""Settings read from the environment, validated once at start-up.

Each service extends `ServiceSettings` with what it alone needs. A missing or unusable value
stops the process with a message naming the variable, before it serves anything.
"""

from __future__ import annotations

import sys
from typing import Self, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
# gRPC messages between our services and from Envoy: a batch of 1000 products fits easily.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    grpc_port: int = Field(ge=0, le=65535)
    grpc_host: str = "[::]"
    log_level: str = "INFO"
    # Signs user tokens (HS256), used as it is.
    jwt_secret: str = Field(min_length=MIN_SECRET_LENGTH)
    # Signs the short-lived service credentials services show each other; never a user's key.
    internal_service_key: str = Field(min_length=MIN_SECRET_LENGTH)
    # Seconds in-flight RPCs get to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def keys_differ(self) -> Self:
        if self.jwt_secret == self.internal_service_key:
            raise ValueError("INTERNAL_SERVICE_KEY must differ from JWT_SECRET")
        return self


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
