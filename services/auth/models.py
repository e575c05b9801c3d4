"""What the auth domain answers: frozen values the servicer turns into protos."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class Organization:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Membership:
    """One of a user's organizations and the user's role in it."""

    organization_id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Member:
    """A user as seen from an organization's member list."""

    user_id: int
    email: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation as the inviting organization's admins see it."""

    id: int
    email: str
    role: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReceivedInvitation:
    """A pending invitation as the invited user sees it."""

    id: int
    organization_id: int
    organization_name: str
    role: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Registration:
    token: str
    expires_at: datetime
    user: User
    organization: Organization


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: User
    organization_id: int
    organizations: tuple[Membership, ...]


@dataclass(frozen=True, slots=True)
class Me:
    user: User
    organization_id: int
    role: str
    organizations: tuple[Membership, ...]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    created_at: datetime
    expires_at: datetime
    current: bool


@dataclass(frozen=True, slots=True)
class CredentialSummary:
    """A marketplace's saved credentials without secrets: `masked` shows last 4 characters."""

    marketplace: str
    is_active: bool
    updated_at: datetime
    masked: dict[str, str]


@dataclass(frozen=True, slots=True)
class SyncLog:
    id: int
    organization_id: int
    marketplace: str
    status: str
    items_fetched: int
    items_written: int
    items_unchanged: int
    items_failed: int
    # What the marketplace says the catalogue holds, as the latest run learned it; None until.
    items_total: int | None
    error: str | None
    queued_at: datetime
    # Of the latest run; None until the first run starts.
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    heartbeat_at: datetime
    trigger: str
    started_by: int | None
    # Runs started so far: 0 while the first is still queued.
    attempt: int
    # DynamoDB units the latest run consumed (its catalog writes).
    read_units: float
    write_units: float


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """The request that queued a sync: its W3C `traceparent`, which the run's trace continues,
    and its request id, which the run's log lines carry. Empty for scheduled syncs."""

    traceparent: str = ""
    request_id: str = ""


NO_ORIGIN = RequestOrigin()


@dataclass(frozen=True, slots=True)
class ClaimedSync:
    """A sync a replica now runs: `claim` is its lease, presented with heartbeats and outcome."""

    log: SyncLog
    claim: str
    origin: RequestOrigin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class SyncLogPage:
    logs: tuple[SyncLog, ...]
    next_before_id: int | None  # pass as before_id for the next page; None on the last page


@dataclass(frozen=True, slots=True)
class SyncCounts:
    items_fetched: int = 0
    items_written: int = 0
    items_unchanged: int = 0
    items_failed: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    # None until the marketplace has said how many items the catalogue holds.
    items_total: int | None = None


@dataclass(frozen=True, slots=True)
class QueueState:
    """The sync queue across every replica, by marketplace, for the metrics."""

    queued: dict[str, int]
    oldest_queued_seconds: dict[str, float]
    oldest_running_seconds: dict[str, float]
    organizations_overdue: int


@dataclass(frozen=True, slots=True)
class DueSync:
    organization_id: int
    marketplace: str
