import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketsync.sync.v1 import sync_pb2 as _sync_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("id", "email", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    email: str
    name: str
    def __init__(self, id: _Optional[int] = ..., email: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class Membership(_message.Message):
    __slots__ = ("id", "name", "role")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    role: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("email", "password", "name", "organization_name")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    name: str
    organization_name: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., name: _Optional[str] = ..., organization_name: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("token", "expires_at", "user", "organization")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    user: User
    organization: Organization
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user: _Optional[_Union[User, _Mapping]] = ..., organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("email", "password", "organization_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    organization_id: int
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., organization_id: _Optional[int] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("token", "expires_at", "user", "organization_id", "organizations")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    user: User
    organization_id: int
    organizations: _containers.RepeatedCompositeFieldContainer[Membership]
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user: _Optional[_Union[User, _Mapping]] = ..., organization_id: _Optional[int] = ..., organizations: _Optional[_Iterable[_Union[Membership, _Mapping]]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMeResponse(_message.Message):
    __slots__ = ("user", "organization_id", "role", "organizations")
    USER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    user: User
    organization_id: int
    role: str
    organizations: _containers.RepeatedCompositeFieldContainer[Membership]
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., organization_id: _Optional[int] = ..., role: _Optional[str] = ..., organizations: _Optional[_Iterable[_Union[Membership, _Mapping]]] = ...) -> None: ...

class SwitchOrganizationRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    def __init__(self, organization_id: _Optional[int] = ...) -> None: ...

class SwitchOrganizationResponse(_message.Message):
    __slots__ = ("token", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("id", "created_at", "expires_at", "current")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    id: int
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    current: bool
    def __init__(self, id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current: _Optional[bool] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class RevokeSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class RevokeSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateOrganizationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateOrganizationResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("user_id", "email", "name", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    email: str
    name: str
    role: str
    def __init__(self, user_id: _Optional[int] = ..., email: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class Invitation(_message.Message):
    __slots__ = ("id", "email", "role", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    email: str
    role: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., email: _Optional[str] = ..., role: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReceivedInvitation(_message.Message):
    __slots__ = ("id", "organization", "role", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    organization: Organization
    role: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., organization: _Optional[_Union[Organization, _Mapping]] = ..., role: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InviteMemberRequest(_message.Message):
    __slots__ = ("email", "role")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    email: str
    role: str
    def __init__(self, email: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class InviteMemberResponse(_message.Message):
    __slots__ = ("invitation",)
    INVITATION_FIELD_NUMBER: _ClassVar[int]
    invitation: Invitation
    def __init__(self, invitation: _Optional[_Union[Invitation, _Mapping]] = ...) -> None: ...

class ListInvitationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInvitationsResponse(_message.Message):
    __slots__ = ("invitations",)
    INVITATIONS_FIELD_NUMBER: _ClassVar[int]
    invitations: _containers.RepeatedCompositeFieldContainer[Invitation]
    def __init__(self, invitations: _Optional[_Iterable[_Union[Invitation, _Mapping]]] = ...) -> None: ...

class RevokeInvitationRequest(_message.Message):
    __slots__ = ("invitation_id",)
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    invitation_id: int
    def __init__(self, invitation_id: _Optional[int] = ...) -> None: ...

class RevokeInvitationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMyInvitationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMyInvitationsResponse(_message.Message):
    __slots__ = ("invitations",)
    INVITATIONS_FIELD_NUMBER: _ClassVar[int]
    invitations: _containers.RepeatedCompositeFieldContainer[ReceivedInvitation]
    def __init__(self, invitations: _Optional[_Iterable[_Union[ReceivedInvitation, _Mapping]]] = ...) -> None: ...

class AcceptInvitationRequest(_message.Message):
    __slots__ = ("invitation_id",)
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    invitation_id: int
    def __init__(self, invitation_id: _Optional[int] = ...) -> None: ...

class AcceptInvitationResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: Member
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...

class DeclineInvitationRequest(_message.Message):
    __slots__ = ("invitation_id",)
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    invitation_id: int
    def __init__(self, invitation_id: _Optional[int] = ...) -> None: ...

class DeclineInvitationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateMemberRoleRequest(_message.Message):
    __slots__ = ("user_id", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    role: str
    def __init__(self, user_id: _Optional[int] = ..., role: _Optional[str] = ...) -> None: ...

class UpdateMemberRoleResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: Member
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class RemoveMemberResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PutCredentialsRequest(_message.Message):
    __slots__ = ("marketplace", "credentials")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    marketplace: str
    credentials: _containers.ScalarMap[str, str]
    def __init__(self, marketplace: _Optional[str] = ..., credentials: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CredentialsSummary(_message.Message):
    __slots__ = ("marketplace", "is_active", "updated_at", "masked")
    class MaskedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    marketplace: str
    is_active: bool
    updated_at: _timestamp_pb2.Timestamp
    masked: _containers.ScalarMap[str, str]
    def __init__(self, marketplace: _Optional[str] = ..., is_active: _Optional[bool] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., masked: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListCredentialsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCredentialsResponse(_message.Message):
    __slots__ = ("credentials",)
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.RepeatedCompositeFieldContainer[CredentialsSummary]
    def __init__(self, credentials: _Optional[_Iterable[_Union[CredentialsSummary, _Mapping]]] = ...) -> None: ...

class DeleteCredentialsRequest(_message.Message):
    __slots__ = ("marketplace",)
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    marketplace: str
    def __init__(self, marketplace: _Optional[str] = ...) -> None: ...

class DeleteCredentialsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckSessionRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "organization_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    user_id: int
    organization_id: int
    def __init__(self, session_id: _Optional[int] = ..., user_id: _Optional[int] = ..., organization_id: _Optional[int] = ...) -> None: ...

class CheckSessionResponse(_message.Message):
    __slots__ = ("role",)
    ROLE_FIELD_NUMBER: _ClassVar[int]
    role: str
    def __init__(self, role: _Optional[str] = ...) -> None: ...

class GetMarketplaceCredentialsRequest(_message.Message):
    __slots__ = ("organization_id", "marketplace")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    marketplace: str
    def __init__(self, organization_id: _Optional[int] = ..., marketplace: _Optional[str] = ...) -> None: ...

class GetMarketplaceCredentialsResponse(_message.Message):
    __slots__ = ("credentials", "updated_at")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.ScalarMap[str, str]
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, credentials: _Optional[_Mapping[str, str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnqueueSyncRequest(_message.Message):
    __slots__ = ("organization_id", "marketplace", "trigger", "started_by_user_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    marketplace: str
    trigger: str
    started_by_user_id: int
    def __init__(self, organization_id: _Optional[int] = ..., marketplace: _Optional[str] = ..., trigger: _Optional[str] = ..., started_by_user_id: _Optional[int] = ...) -> None: ...

class EnqueueDueSyncsRequest(_message.Message):
    __slots__ = ("interval_seconds", "jitter_seconds")
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JITTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    interval_seconds: int
    jitter_seconds: int
    def __init__(self, interval_seconds: _Optional[int] = ..., jitter_seconds: _Optional[int] = ...) -> None: ...

class EnqueueDueSyncsResponse(_message.Message):
    __slots__ = ("queued",)
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    queued: _containers.RepeatedCompositeFieldContainer[_sync_pb2.DueSync]
    def __init__(self, queued: _Optional[_Iterable[_Union[_sync_pb2.DueSync, _Mapping]]] = ...) -> None: ...

class ClaimSyncsRequest(_message.Message):
    __slots__ = ("replica", "max_syncs")
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_SYNCS_FIELD_NUMBER: _ClassVar[int]
    replica: str
    max_syncs: int
    def __init__(self, replica: _Optional[str] = ..., max_syncs: _Optional[int] = ...) -> None: ...

class ClaimedSync(_message.Message):
    __slots__ = ("organization_id", "log", "claim", "traceparent", "request_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    log: _sync_pb2.SyncLog
    claim: str
    traceparent: str
    request_id: str
    def __init__(self, organization_id: _Optional[int] = ..., log: _Optional[_Union[_sync_pb2.SyncLog, _Mapping]] = ..., claim: _Optional[str] = ..., traceparent: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ClaimSyncsResponse(_message.Message):
    __slots__ = ("claimed",)
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    claimed: _containers.RepeatedCompositeFieldContainer[ClaimedSync]
    def __init__(self, claimed: _Optional[_Iterable[_Union[ClaimedSync, _Mapping]]] = ...) -> None: ...

class HeartbeatSyncLogRequest(_message.Message):
    __slots__ = ("organization_id", "sync_id", "claim", "counts")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    sync_id: int
    claim: str
    counts: _sync_pb2.SyncCounts
    def __init__(self, organization_id: _Optional[int] = ..., sync_id: _Optional[int] = ..., claim: _Optional[str] = ..., counts: _Optional[_Union[_sync_pb2.SyncCounts, _Mapping]] = ...) -> None: ...

class HeartbeatSyncLogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FinishSyncLogRequest(_message.Message):
    __slots__ = ("organization_id", "sync_id", "claim", "status", "counts", "error", "retry")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    sync_id: int
    claim: str
    status: str
    counts: _sync_pb2.SyncCounts
    error: str
    retry: bool
    def __init__(self, organization_id: _Optional[int] = ..., sync_id: _Optional[int] = ..., claim: _Optional[str] = ..., status: _Optional[str] = ..., counts: _Optional[_Union[_sync_pb2.SyncCounts, _Mapping]] = ..., error: _Optional[str] = ..., retry: _Optional[bool] = ...) -> None: ...

class ReleaseSyncLogRequest(_message.Message):
    __slots__ = ("organization_id", "sync_id", "claim", "counts")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    sync_id: int
    claim: str
    counts: _sync_pb2.SyncCounts
    def __init__(self, organization_id: _Optional[int] = ..., sync_id: _Optional[int] = ..., claim: _Optional[str] = ..., counts: _Optional[_Union[_sync_pb2.SyncCounts, _Mapping]] = ...) -> None: ...

class ReleaseSyncLogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSyncLogRequest(_message.Message):
    __slots__ = ("organization_id", "sync_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    sync_id: int
    def __init__(self, organization_id: _Optional[int] = ..., sync_id: _Optional[int] = ...) -> None: ...

class ListSyncLogsRequest(_message.Message):
    __slots__ = ("organization_id", "page_size", "before_sync_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    page_size: int
    before_sync_id: int
    def __init__(self, organization_id: _Optional[int] = ..., page_size: _Optional[int] = ..., before_sync_id: _Optional[int] = ...) -> None: ...

class ListSyncLogsResponse(_message.Message):
    __slots__ = ("logs", "next_before_sync_id")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[_sync_pb2.SyncLog]
    next_before_sync_id: int
    def __init__(self, logs: _Optional[_Iterable[_Union[_sync_pb2.SyncLog, _Mapping]]] = ..., next_before_sync_id: _Optional[int] = ...) -> None: ...
