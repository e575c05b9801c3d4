"""Translation between the auth protos and the auth domain. No rules live here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from grpc import aio

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.convert import to_timestamp
from marketsync.identity import Identity, current_identity
from marketsync.logs import current_request_id
from marketsync.sync.v1 import sync_pb2
from marketsync.tracing import current_traceparent
from services.auth.accounts import Accounts
from services.auth.credentials import Credentials
from services.auth.invitations import Invitations
from services.auth.metrics import counted_login
from services.auth.models import (
    CredentialSummary,
    Invitation,
    Member,
    Membership,
    ReceivedInvitation,
    RequestOrigin,
    SyncCounts,
    SyncLog,
    User,
)
from services.auth.organizations import Organizations
from services.auth.sync_logs import SyncLogs
from services.auth.throttle import client_address

# Envoy's request ids are UUIDs; anything longer a caller sends is cut, not stored whole.
MAX_REQUEST_ID_CHARS = 128


def _user(user: User) -> auth_pb2.User:
    return auth_pb2.User(id=user.id, email=user.email, name=user.name)


def _memberships(memberships: tuple[Membership, ...]) -> list[auth_pb2.Membership]:
    return [
        auth_pb2.Membership(id=m.organization_id, name=m.name, role=m.role) for m in memberships
    ]


def _member(member: Member) -> auth_pb2.Member:
    return auth_pb2.Member(
        user_id=member.user_id, email=member.email, name=member.name, role=member.role
    )


def _invitation(invitation: Invitation) -> auth_pb2.Invitation:
    return auth_pb2.Invitation(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        expires_at=to_timestamp(invitation.expires_at),
    )


def _received(invitation: ReceivedInvitation) -> auth_pb2.ReceivedInvitation:
    return auth_pb2.ReceivedInvitation(
        id=invitation.id,
        organization=auth_pb2.Organization(
            id=invitation.organization_id, name=invitation.organization_name
        ),
        role=invitation.role,
        expires_at=to_timestamp(invitation.expires_at),
    )


def _client(context: aio.ServicerContext[Any, Any]) -> str:
    return client_address(dict(context.invocation_metadata() or ()), context.peer())


def _credentials(summary: CredentialSummary) -> auth_pb2.CredentialsSummary:
    return auth_pb2.CredentialsSummary(
        marketplace=summary.marketplace,
        is_active=summary.is_active,
        updated_at=to_timestamp(summary.updated_at),
        masked=summary.masked,
    )


def sync_log_message(log: SyncLog) -> sync_pb2.SyncLog:
    return sync_pb2.SyncLog(
        sync_id=log.id,
        marketplace=log.marketplace,
        status=log.status,
        items_fetched=log.items_fetched,
        items_written=log.items_written,
        items_unchanged=log.items_unchanged,
        items_failed=log.items_failed,
        items_total=log.items_total,
        queued_at=to_timestamp(log.queued_at),
        started_at=to_timestamp(log.started_at),
        finished_at=to_timestamp(log.finished_at),
        duration_ms=log.duration_ms or 0,
        error=log.error or "",
        attempt=log.attempt,
        capacity_units=sync_pb2.CapacityUnits(read=log.read_units, write=log.write_units),
    )


def _counts(counts: sync_pb2.SyncCounts) -> SyncCounts:
    return SyncCounts(
        items_fetched=counts.items_fetched,
        items_written=counts.items_written,
        items_unchanged=counts.items_unchanged,
        items_failed=counts.items_failed,
        read_units=counts.capacity_units.read,
        write_units=counts.capacity_units.write,
        items_total=counts.items_total if counts.HasField("items_total") else None,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self, accounts: Accounts, organizations: Organizations, invitations: Invitations
    ) -> None:
        self._accounts = accounts
        self._organizations = organizations
        self._invitations = invitations

    async def Register(
        self,
        request: auth_pb2.RegisterRequest,
        context: aio.ServicerContext[auth_pb2.RegisterRequest, auth_pb2.RegisterResponse],
    ) -> auth_pb2.RegisterResponse:
        registration = await self._accounts.register(
            email=request.email,
            password=request.password,
            name=request.name,
            organization_name=request.organization_name,
            client=_client(context),
        )
        return auth_pb2.RegisterResponse(
            token=registration.token,
            expires_at=to_timestamp(registration.expires_at),
            user=_user(registration.user),
            organization=auth_pb2.Organization(
                id=registration.organization.id, name=registration.organization.name
            ),
        )

    async def Login(
        self,
        request: auth_pb2.LoginRequest,
        context: aio.ServicerContext[auth_pb2.LoginRequest, auth_pb2.LoginResponse],
    ) -> auth_pb2.LoginResponse:
        result = await counted_login(
            self._accounts.login(
                email=request.email,
                password=request.password,
                organization_id=request.organization_id or None,
                client=_client(context),
            )
        )
        return auth_pb2.LoginResponse(
            token=result.token,
            expires_at=to_timestamp(result.expires_at),
            user=_user(result.user),
            organization_id=result.organization_id,
            organizations=_memberships(result.organizations),
        )

    async def Logout(
        self,
        request: auth_pb2.LogoutRequest,
        context: aio.ServicerContext[auth_pb2.LogoutRequest, auth_pb2.LogoutResponse],
    ) -> auth_pb2.LogoutResponse:
        await self._accounts.logout(current_identity())
        return auth_pb2.LogoutResponse()

    async def GetMe(
        self,
        request: auth_pb2.GetMeRequest,
        context: aio.ServicerContext[auth_pb2.GetMeRequest, auth_pb2.GetMeResponse],
    ) -> auth_pb2.GetMeResponse:
        me = await self._accounts.me(current_identity())
        return auth_pb2.GetMeResponse(
            user=_user(me.user),
            organization_id=me.organization_id,
            role=me.role,
            organizations=_memberships(me.organizations),
        )

    async def SwitchOrganization(
        self,
        request: auth_pb2.SwitchOrganizationRequest,
        context: aio.ServicerContext[
            auth_pb2.SwitchOrganizationRequest, auth_pb2.SwitchOrganizationResponse
        ],
    ) -> auth_pb2.SwitchOrganizationResponse:
        issued = await self._accounts.switch_organization(
            current_identity(), request.organization_id
        )
        return auth_pb2.SwitchOrganizationResponse(
            token=issued.token, expires_at=to_timestamp(issued.expires_at)
        )

    async def ListSessions(
        self,
        request: auth_pb2.ListSessionsRequest,
        context: aio.ServicerContext[auth_pb2.ListSessionsRequest, auth_pb2.ListSessionsResponse],
    ) -> auth_pb2.ListSessionsResponse:
        sessions = await self._accounts.list_sessions(current_identity())
        return auth_pb2.ListSessionsResponse(
            sessions=[
                auth_pb2.Session(
                    id=s.id,
                    created_at=to_timestamp(s.created_at),
                    expires_at=to_timestamp(s.expires_at),
                    current=s.current,
                )
                for s in sessions
            ]
        )

    async def RevokeSession(
        self,
        request: auth_pb2.RevokeSessionRequest,
        context: aio.ServicerContext[auth_pb2.RevokeSessionRequest, auth_pb2.RevokeSessionResponse],
    ) -> auth_pb2.RevokeSessionResponse:
        await self._accounts.revoke_session(current_identity(), request.session_id)
        return auth_pb2.RevokeSessionResponse()

    async def CreateOrganization(
        self,
        request: auth_pb2.CreateOrganizationRequest,
        context: aio.ServicerContext[
            auth_pb2.CreateOrganizationRequest, auth_pb2.CreateOrganizationResponse
        ],
    ) -> auth_pb2.CreateOrganizationResponse:
        organization = await self._organizations.create(current_identity(), request.name)
        return auth_pb2.CreateOrganizationResponse(
            organization=auth_pb2.Organization(id=organization.id, name=organization.name)
        )

    async def ListMembers(
        self,
        request: auth_pb2.ListMembersRequest,
        context: aio.ServicerContext[auth_pb2.ListMembersRequest, auth_pb2.ListMembersResponse],
    ) -> auth_pb2.ListMembersResponse:
        members = await self._organizations.list_members(current_identity())
        return auth_pb2.ListMembersResponse(members=[_member(m) for m in members])

    async def InviteMember(
        self,
        request: auth_pb2.InviteMemberRequest,
        context: aio.ServicerContext[auth_pb2.InviteMemberRequest, auth_pb2.InviteMemberResponse],
    ) -> auth_pb2.InviteMemberResponse:
        invitation = await self._invitations.invite(
            current_identity(), email=request.email, role=request.role
        )
        return auth_pb2.InviteMemberResponse(invitation=_invitation(invitation))

    async def ListInvitations(
        self,
        request: auth_pb2.ListInvitationsRequest,
        context: aio.ServicerContext[
            auth_pb2.ListInvitationsRequest, auth_pb2.ListInvitationsResponse
        ],
    ) -> auth_pb2.ListInvitationsResponse:
        invitations = await self._invitations.list_pending(current_identity())
        return auth_pb2.ListInvitationsResponse(invitations=[_invitation(i) for i in invitations])

    async def RevokeInvitation(
        self,
        request: auth_pb2.RevokeInvitationRequest,
        context: aio.ServicerContext[
            auth_pb2.RevokeInvitationRequest, auth_pb2.RevokeInvitationResponse
        ],
    ) -> auth_pb2.RevokeInvitationResponse:
        await self._invitations.revoke(current_identity(), request.invitation_id)
        return auth_pb2.RevokeInvitationResponse()

    async def ListMyInvitations(
        self,
        request: auth_pb2.ListMyInvitationsRequest,
        context: aio.ServicerContext[
            auth_pb2.ListMyInvitationsRequest, auth_pb2.ListMyInvitationsResponse
        ],
    ) -> auth_pb2.ListMyInvitationsResponse:
        invitations = await self._invitations.received(current_identity())
        return auth_pb2.ListMyInvitationsResponse(invitations=[_received(i) for i in invitations])

    async def AcceptInvitation(
        self,
        request: auth_pb2.AcceptInvitationRequest,
        context: aio.ServicerContext[
            auth_pb2.AcceptInvitationRequest, auth_pb2.AcceptInvitationResponse
        ],
    ) -> auth_pb2.AcceptInvitationResponse:
        member = await self._invitations.accept(current_identity(), request.invitation_id)
        return auth_pb2.AcceptInvitationResponse(member=_member(member))

    async def DeclineInvitation(
        self,
        request: auth_pb2.DeclineInvitationRequest,
        context: aio.ServicerContext[
            auth_pb2.DeclineInvitationRequest, auth_pb2.DeclineInvitationResponse
        ],
    ) -> auth_pb2.DeclineInvitationResponse:
        await self._invitations.decline(current_identity(), request.invitation_id)
        return auth_pb2.DeclineInvitationResponse()

    async def UpdateMemberRole(
        self,
        request: auth_pb2.UpdateMemberRoleRequest,
        context: aio.ServicerContext[
            auth_pb2.UpdateMemberRoleRequest, auth_pb2.UpdateMemberRoleResponse
        ],
    ) -> auth_pb2.UpdateMemberRoleResponse:
        member = await self._organizations.change_role(
            current_identity(), user_id=request.user_id, role=request.role
        )
        return auth_pb2.UpdateMemberRoleResponse(member=_member(member))

    async def RemoveMember(
        self,
        request: auth_pb2.RemoveMemberRequest,
        context: aio.ServicerContext[auth_pb2.RemoveMemberRequest, auth_pb2.RemoveMemberResponse],
    ) -> auth_pb2.RemoveMemberResponse:
        await self._organizations.remove_member(current_identity(), request.user_id)
        return auth_pb2.RemoveMemberResponse()


class CredentialsServicer(auth_pb2_grpc.CredentialsServiceServicer):
    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def PutCredentials(
        self,
        request: auth_pb2.PutCredentialsRequest,
        context: aio.ServicerContext[auth_pb2.PutCredentialsRequest, auth_pb2.CredentialsSummary],
    ) -> auth_pb2.CredentialsSummary:
        summary = await self._credentials.save(
            current_identity(), request.marketplace, dict(request.credentials)
        )
        return _credentials(summary)

    async def ListCredentials(
        self,
        request: auth_pb2.ListCredentialsRequest,
        context: aio.ServicerContext[
            auth_pb2.ListCredentialsRequest, auth_pb2.ListCredentialsResponse
        ],
    ) -> auth_pb2.ListCredentialsResponse:
        summaries = await self._credentials.list_all(current_identity())
        return auth_pb2.ListCredentialsResponse(credentials=[_credentials(s) for s in summaries])

    async def DeleteCredentials(
        self,
        request: auth_pb2.DeleteCredentialsRequest,
        context: aio.ServicerContext[
            auth_pb2.DeleteCredentialsRequest, auth_pb2.DeleteCredentialsResponse
        ],
    ) -> auth_pb2.DeleteCredentialsResponse:
        await self._credentials.delete(current_identity(), request.marketplace)
        return auth_pb2.DeleteCredentialsResponse()


class AuthInternalServicer(auth_pb2_grpc.AuthInternalServiceServicer):
    def __init__(self, accounts: Accounts, credentials: Credentials, sync_logs: SyncLogs) -> None:
        self._accounts = accounts
        self._credentials = credentials
        self._sync_logs = sync_logs

    async def CheckSession(
        self,
        request: auth_pb2.CheckSessionRequest,
        context: aio.ServicerContext[auth_pb2.CheckSessionRequest, auth_pb2.CheckSessionResponse],
    ) -> auth_pb2.CheckSessionResponse:
        # The role is a placeholder: the member row decides and check_session answers it.
        claimed = Identity(
            user_id=request.user_id,
            organization_id=request.organization_id,
            role="viewer",
            session_id=request.session_id,
        )
        confirmed = await self._accounts.check_session(claimed)
        return auth_pb2.CheckSessionResponse(role=confirmed.role)

    async def GetMarketplaceCredentials(
        self,
        request: auth_pb2.GetMarketplaceCredentialsRequest,
        context: aio.ServicerContext[
            auth_pb2.GetMarketplaceCredentialsRequest, auth_pb2.GetMarketplaceCredentialsResponse
        ],
    ) -> auth_pb2.GetMarketplaceCredentialsResponse:
        fields = await self._credentials.read_active_credentials(
            request.organization_id, request.marketplace
        )
        return auth_pb2.GetMarketplaceCredentialsResponse(credentials=fields)

    async def EnqueueSync(
        self,
        request: auth_pb2.EnqueueSyncRequest,
        context: aio.ServicerContext[auth_pb2.EnqueueSyncRequest, sync_pb2.SyncLog],
    ) -> sync_pb2.SyncLog:
        log = await self._sync_logs.enqueue(
            organization_id=request.organization_id,
            marketplace=request.marketplace,
            trigger=request.trigger,
            started_by=request.started_by_user_id or None,
            # This call is part of the request that queued the sync; its run continues it.
            origin=RequestOrigin(
                current_traceparent(), current_request_id()[:MAX_REQUEST_ID_CHARS]
            ),
        )
        return sync_log_message(log)

    async def EnqueueDueSyncs(
        self,
        request: auth_pb2.EnqueueDueSyncsRequest,
        context: aio.ServicerContext[
            auth_pb2.EnqueueDueSyncsRequest, auth_pb2.EnqueueDueSyncsResponse
        ],
    ) -> auth_pb2.EnqueueDueSyncsResponse:
        queued = await self._sync_logs.enqueue_due(
            interval=timedelta(seconds=request.interval_seconds),
            jitter=timedelta(seconds=request.jitter_seconds),
        )
        return auth_pb2.EnqueueDueSyncsResponse(
            queued=[
                sync_pb2.DueSync(organization_id=d.organization_id, marketplace=d.marketplace)
                for d in queued
            ]
        )

    async def ClaimSyncs(
        self,
        request: auth_pb2.ClaimSyncsRequest,
        context: aio.ServicerContext[auth_pb2.ClaimSyncsRequest, auth_pb2.ClaimSyncsResponse],
    ) -> auth_pb2.ClaimSyncsResponse:
        claimed = await self._sync_logs.claim(replica=request.replica, max_syncs=request.max_syncs)
        return auth_pb2.ClaimSyncsResponse(
            claimed=[
                auth_pb2.ClaimedSync(
                    organization_id=c.log.organization_id,
                    log=sync_log_message(c.log),
                    claim=c.claim,
                    traceparent=c.origin.traceparent,
                    request_id=c.origin.request_id,
                )
                for c in claimed
            ]
        )

    async def HeartbeatSyncLog(
        self,
        request: auth_pb2.HeartbeatSyncLogRequest,
        context: aio.ServicerContext[
            auth_pb2.HeartbeatSyncLogRequest, auth_pb2.HeartbeatSyncLogResponse
        ],
    ) -> auth_pb2.HeartbeatSyncLogResponse:
        await self._sync_logs.heartbeat(
            organization_id=request.organization_id,
            sync_id=request.sync_id,
            claim=request.claim,
            counts=_counts(request.counts),
        )
        return auth_pb2.HeartbeatSyncLogResponse()

    async def FinishSyncLog(
        self,
        request: auth_pb2.FinishSyncLogRequest,
        context: aio.ServicerContext[auth_pb2.FinishSyncLogRequest, sync_pb2.SyncLog],
    ) -> sync_pb2.SyncLog:
        log = await self._sync_logs.finish(
            organization_id=request.organization_id,
            sync_id=request.sync_id,
            claim=request.claim,
            status=request.status,
            counts=_counts(request.counts),
            error=request.error or None,
            retry=request.retry,
        )
        return sync_log_message(log)

    async def ReleaseSyncLog(
        self,
        request: auth_pb2.ReleaseSyncLogRequest,
        context: aio.ServicerContext[
            auth_pb2.ReleaseSyncLogRequest, auth_pb2.ReleaseSyncLogResponse
        ],
    ) -> auth_pb2.ReleaseSyncLogResponse:
        await self._sync_logs.release(
            organization_id=request.organization_id,
            sync_id=request.sync_id,
            claim=request.claim,
            counts=_counts(request.counts),
        )
        return auth_pb2.ReleaseSyncLogResponse()

    async def GetSyncLog(
        self,
        request: auth_pb2.GetSyncLogRequest,
        context: aio.ServicerContext[auth_pb2.GetSyncLogRequest, sync_pb2.SyncLog],
    ) -> sync_pb2.SyncLog:
        log = await self._sync_logs.get(
            organization_id=request.organization_id, sync_id=request.sync_id
        )
        return sync_log_message(log)

    async def ListSyncLogs(
        self,
        request: auth_pb2.ListSyncLogsRequest,
        context: aio.ServicerContext[auth_pb2.ListSyncLogsRequest, auth_pb2.ListSyncLogsResponse],
    ) -> auth_pb2.ListSyncLogsResponse:
        page = await self._sync_logs.list_page(
            organization_id=request.organization_id,
            limit=request.page_size,
            before_id=request.before_sync_id or None,
        )
        return auth_pb2.ListSyncLogsResponse(
            logs=[sync_log_message(log) for log in page.logs],
            next_before_sync_id=page.next_before_id or 0,
        )
