"""Translation between the sync protos and the sync runner and logs. No rules live here."""

from __future__ import annotations

from grpc import aio

from marketsync.auth.v1 import auth_pb2, auth_pb2_grpc
from marketsync.errors import InvalidArgument
from marketsync.identity import current_identity
from marketsync.page_tokens import PageTokenSigner
from marketsync.sync.v1 import sync_pb2, sync_pb2_grpc
from services.sync.runner import SyncWorker

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class SyncServicer(sync_pb2_grpc.SyncServiceServicer):
    def __init__(
        self,
        worker: SyncWorker,
        auth: auth_pb2_grpc.AuthInternalServiceAsyncStub,
        page_tokens: PageTokenSigner,
    ) -> None:
        self._worker = worker
        self._auth = auth
        self._page_tokens = page_tokens

    async def StartSync(
        self,
        request: sync_pb2.StartSyncRequest,
        context: aio.ServicerContext[sync_pb2.StartSyncRequest, sync_pb2.StartSyncResponse],
    ) -> sync_pb2.StartSyncResponse:
        identity = current_identity()
        identity.require_role("member")
        sync_log = await self._worker.enqueue(
            organization_id=identity.organization_id,
            marketplace=request.marketplace,
            trigger="manual",
            started_by=identity.user_id,
        )
        return sync_pb2.StartSyncResponse(sync_id=sync_log.sync_id, status=sync_log.status)

    async def GetSync(
        self,
        request: sync_pb2.GetSyncRequest,
        context: aio.ServicerContext[sync_pb2.GetSyncRequest, sync_pb2.SyncLog],
    ) -> sync_pb2.SyncLog:
        identity = current_identity()
        return await self._auth.GetSyncLog(
            auth_pb2.GetSyncLogRequest(
                organization_id=identity.organization_id, sync_id=request.sync_id
            ),
            timeout=10,
        )

    async def ListSyncLogs(
        self,
        request: sync_pb2.ListSyncLogsRequest,
        context: aio.ServicerContext[sync_pb2.ListSyncLogsRequest, sync_pb2.ListSyncLogsResponse],
    ) -> sync_pb2.ListSyncLogsResponse:
        identity = current_identity()
        page_size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size: must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        binding = {"organization_id": identity.organization_id}
        before = (
            int(self._page_tokens.decode(request.page_token, binding)["before"])
            if request.page_token
            else 0
        )
        page = await self._auth.ListSyncLogs(
            auth_pb2.ListSyncLogsRequest(
                organization_id=identity.organization_id,
                page_size=page_size,
                before_sync_id=before,
            ),
            timeout=10,
        )
        next_token = (
            self._page_tokens.encode({"before": page.next_before_sync_id}, binding)
            if page.next_before_sync_id
            else ""
        )
        return sync_pb2.ListSyncLogsResponse(logs=page.logs, next_page_token=next_token)
