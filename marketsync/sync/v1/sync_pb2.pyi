import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartSyncRequest(_message.Message):
    __slots__ = ("marketplace",)
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    marketplace: str
    def __init__(self, marketplace: _Optional[str] = ...) -> None: ...

class StartSyncResponse(_message.Message):
    __slots__ = ("sync_id", "status")
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    sync_id: int
    status: str
    def __init__(self, sync_id: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class GetSyncRequest(_message.Message):
    __slots__ = ("sync_id",)
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    sync_id: int
    def __init__(self, sync_id: _Optional[int] = ...) -> None: ...

class ListSyncLogsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSyncLogsResponse(_message.Message):
    __slots__ = ("logs", "next_page_token")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[SyncLog]
    next_page_token: str
    def __init__(self, logs: _Optional[_Iterable[_Union[SyncLog, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SyncCounts(_message.Message):
    __slots__ = ("items_fetched", "items_written", "items_unchanged", "items_failed", "capacity_units")
    ITEMS_FETCHED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_UNITS_FIELD_NUMBER: _ClassVar[int]
    items_fetched: int
    items_written: int
    items_unchanged: int
    items_failed: int
    capacity_units: CapacityUnits
    def __init__(self, items_fetched: _Optional[int] = ..., items_written: _Optional[int] = ..., items_unchanged: _Optional[int] = ..., items_failed: _Optional[int] = ..., capacity_units: _Optional[_Union[CapacityUnits, _Mapping]] = ...) -> None: ...

class CapacityUnits(_message.Message):
    __slots__ = ("read", "write")
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    read: float
    write: float
    def __init__(self, read: _Optional[float] = ..., write: _Optional[float] = ...) -> None: ...

class SyncLog(_message.Message):
    __slots__ = ("sync_id", "marketplace", "status", "items_fetched", "items_written", "items_unchanged", "items_failed", "started_at", "finished_at", "duration_ms", "error", "attempt", "queued_at", "capacity_units")
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FETCHED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_UNITS_FIELD_NUMBER: _ClassVar[int]
    sync_id: int
    marketplace: str
    status: str
    items_fetched: int
    items_written: int
    items_unchanged: int
    items_failed: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_ms: int
    error: str
    attempt: int
    queued_at: _timestamp_pb2.Timestamp
    capacity_units: CapacityUnits
    def __init__(self, sync_id: _Optional[int] = ..., marketplace: _Optional[str] = ..., status: _Optional[str] = ..., items_fetched: _Optional[int] = ..., items_written: _Optional[int] = ..., items_unchanged: _Optional[int] = ..., items_failed: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., error: _Optional[str] = ..., attempt: _Optional[int] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., capacity_units: _Optional[_Union[CapacityUnits, _Mapping]] = ...) -> None: ...

class DueSync(_message.Message):
    __slots__ = ("organization_id", "marketplace")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MARKETPLACE_FIELD_NUMBER: _ClassVar[int]
    organization_id: int
    marketplace: str
    def __init__(self, organization_id: _Optional[int] = ..., marketplace: _Optional[str] = ...) -> None: ...
