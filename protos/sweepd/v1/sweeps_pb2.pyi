import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sweepd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SweepAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_ACTION_UNSPECIFIED: _ClassVar[SweepAction]
    SWEEP_ACTION_PAUSE: _ClassVar[SweepAction]
    SWEEP_ACTION_RESUME: _ClassVar[SweepAction]
    SWEEP_ACTION_STOP: _ClassVar[SweepAction]
    SWEEP_ACTION_CANCEL: _ClassVar[SweepAction]
SWEEP_ACTION_UNSPECIFIED: SweepAction
SWEEP_ACTION_PAUSE: SweepAction
SWEEP_ACTION_RESUME: SweepAction
SWEEP_ACTION_STOP: SweepAction
SWEEP_ACTION_CANCEL: SweepAction

class GetParamImportanceRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class ValueCorrelation(_message.Message):
    __slots__ = ("value", "correlation", "runs")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    value: str
    correlation: float
    runs: int
    def __init__(self, value: _Optional[str] = ..., correlation: _Optional[float] = ..., runs: _Optional[int] = ...) -> None: ...

class ParamImportance(_message.Message):
    __slots__ = ("param", "importance", "importance_std", "correlation", "kind", "by_value")
    PARAM_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_STD_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BY_VALUE_FIELD_NUMBER: _ClassVar[int]
    param: str
    importance: float
    importance_std: float
    correlation: float
    kind: str
    by_value: _containers.RepeatedCompositeFieldContainer[ValueCorrelation]
    def __init__(self, param: _Optional[str] = ..., importance: _Optional[float] = ..., importance_std: _Optional[float] = ..., correlation: _Optional[float] = ..., kind: _Optional[str] = ..., by_value: _Optional[_Iterable[_Union[ValueCorrelation, _Mapping]]] = ...) -> None: ...

class GetParamImportanceResponse(_message.Message):
    __slots__ = ("params", "runs_used", "model", "model_r2", "notices")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RUNS_USED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_R2_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    params: _containers.RepeatedCompositeFieldContainer[ParamImportance]
    runs_used: int
    model: str
    model_r2: float
    notices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, params: _Optional[_Iterable[_Union[ParamImportance, _Mapping]]] = ..., runs_used: _Optional[int] = ..., model: _Optional[str] = ..., model_r2: _Optional[float] = ..., notices: _Optional[_Iterable[str]] = ...) -> None: ...

class RetryRunsRequest(_message.Message):
    __slots__ = ("sweep_id", "failed", "lost")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    failed: bool
    lost: bool
    def __init__(self, sweep_id: _Optional[str] = ..., failed: _Optional[bool] = ..., lost: _Optional[bool] = ...) -> None: ...

class RetryRunsResponse(_message.Message):
    __slots__ = ("run_ids", "sweep")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    sweep: _common_pb2.Sweep
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., sweep: _Optional[_Union[_common_pb2.Sweep, _Mapping]] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("attempt", "time", "state", "reason", "worker_id")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    time: _timestamp_pb2.Timestamp
    state: _common_pb2.RunState
    reason: str
    worker_id: str
    def __init__(self, attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.RunState, str]] = ..., reason: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...

class CreateSweepRequest(_message.Message):
    __slots__ = ("config_text", "source_name", "queue", "max_concurrent", "max_retries", "validate_only")
    CONFIG_TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    config_text: str
    source_name: str
    queue: str
    max_concurrent: int
    max_retries: int
    validate_only: bool
    def __init__(self, config_text: _Optional[str] = ..., source_name: _Optional[str] = ..., queue: _Optional[str] = ..., max_concurrent: _Optional[int] = ..., max_retries: _Optional[int] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: _common_pb2.Sweep
    def __init__(self, sweep: _Optional[_Union[_common_pb2.Sweep, _Mapping]] = ...) -> None: ...

class GetSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps",)
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[_common_pb2.Sweep]
    def __init__(self, sweeps: _Optional[_Iterable[_Union[_common_pb2.Sweep, _Mapping]]] = ...) -> None: ...

class SetSweepStateRequest(_message.Message):
    __slots__ = ("sweep_id", "action")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    action: SweepAction
    def __init__(self, sweep_id: _Optional[str] = ..., action: _Optional[_Union[SweepAction, str]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("sweep_id", "page_size", "page_token")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    page_size: int
    page_token: str
    def __init__(self, sweep_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[_common_pb2.Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id", "include_history")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    include_history: bool
    def __init__(self, run_id: _Optional[str] = ..., include_history: _Optional[bool] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run", "history", "events")
    RUN_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.Run
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricRecord]
    events: _containers.RepeatedCompositeFieldContainer[RunEvent]
    def __init__(self, run: _Optional[_Union[_common_pb2.Run, _Mapping]] = ..., history: _Optional[_Iterable[_Union[_common_pb2.MetricRecord, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[RunEvent, _Mapping]]] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("id", "host", "slots", "labels", "connected", "run_ids", "last_heartbeat", "connected_at", "sweep_id", "gpus", "queues")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    id: str
    host: str
    slots: int
    labels: _containers.ScalarMap[str, str]
    connected: bool
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    last_heartbeat: _timestamp_pb2.Timestamp
    connected_at: _timestamp_pb2.Timestamp
    sweep_id: str
    gpus: _containers.RepeatedScalarFieldContainer[str]
    queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., host: _Optional[str] = ..., slots: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., connected: _Optional[bool] = ..., run_ids: _Optional[_Iterable[str]] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sweep_id: _Optional[str] = ..., gpus: _Optional[_Iterable[str]] = ..., queues: _Optional[_Iterable[str]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class SuggestRunRequest(_message.Message):
    __slots__ = ("sweep_id", "client_id", "finish")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    client_id: str
    finish: FinishRunRequest
    def __init__(self, sweep_id: _Optional[str] = ..., client_id: _Optional[str] = ..., finish: _Optional[_Union[FinishRunRequest, _Mapping]] = ...) -> None: ...

class SuggestRunResponse(_message.Message):
    __slots__ = ("run", "sweep_done", "lease_seconds", "finished")
    RUN_FIELD_NUMBER: _ClassVar[int]
    SWEEP_DONE_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.Run
    sweep_done: bool
    lease_seconds: float
    finished: _common_pb2.Run
    def __init__(self, run: _Optional[_Union[_common_pb2.Run, _Mapping]] = ..., sweep_done: _Optional[bool] = ..., lease_seconds: _Optional[float] = ..., finished: _Optional[_Union[_common_pb2.Run, _Mapping]] = ...) -> None: ...

class ReportMetricsRequest(_message.Message):
    __slots__ = ("run_id", "attempt", "records", "client_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    records: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricRecord]
    client_id: str
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_common_pb2.MetricRecord, _Mapping]]] = ..., client_id: _Optional[str] = ...) -> None: ...

class ReportMetricsResponse(_message.Message):
    __slots__ = ("should_stop", "stop_reason")
    SHOULD_STOP_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    should_stop: bool
    stop_reason: str
    def __init__(self, should_stop: _Optional[bool] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class FinishRunRequest(_message.Message):
    __slots__ = ("run_id", "attempt", "state", "exit_code", "reason", "client_id", "records")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    state: _common_pb2.RunState
    exit_code: int
    reason: str
    client_id: str
    records: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricRecord]
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.RunState, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., client_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[_common_pb2.MetricRecord, _Mapping]]] = ...) -> None: ...

class GetRunLogsRequest(_message.Message):
    __slots__ = ("run_id", "follow")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    follow: bool
    def __init__(self, run_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...

class WatchSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class SweepUpdate(_message.Message):
    __slots__ = ("sweep", "run")
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    sweep: _common_pb2.Sweep
    run: _common_pb2.Run
    def __init__(self, sweep: _Optional[_Union[_common_pb2.Sweep, _Mapping]] = ..., run: _Optional[_Union[_common_pb2.Run, _Mapping]] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
