import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sweepd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerMessage(_message.Message):
    __slots__ = ("seq", "hello", "heartbeat", "run_started", "metrics", "run_finished", "output")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RUN_STARTED_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RUN_FINISHED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hello: Hello
    heartbeat: Heartbeat
    run_started: RunStarted
    metrics: MetricBatch
    run_finished: RunFinished
    output: RunOutput
    def __init__(self, seq: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., run_started: _Optional[_Union[RunStarted, _Mapping]] = ..., metrics: _Optional[_Union[MetricBatch, _Mapping]] = ..., run_finished: _Optional[_Union[RunFinished, _Mapping]] = ..., output: _Optional[_Union[RunOutput, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("worker_id", "incarnation", "host", "slots", "labels", "held_runs", "sweep_id", "heartbeat_interval_s", "max_runs", "last_acked_seq", "runs_assigned", "gpus", "queues")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    HELD_RUNS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNS_FIELD_NUMBER: _ClassVar[int]
    LAST_ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    RUNS_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    incarnation: str
    host: str
    slots: int
    labels: _containers.ScalarMap[str, str]
    held_runs: _containers.RepeatedCompositeFieldContainer[HeldRun]
    sweep_id: str
    heartbeat_interval_s: float
    max_runs: int
    last_acked_seq: int
    runs_assigned: int
    gpus: _containers.RepeatedScalarFieldContainer[str]
    queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., incarnation: _Optional[str] = ..., host: _Optional[str] = ..., slots: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., held_runs: _Optional[_Iterable[_Union[HeldRun, _Mapping]]] = ..., sweep_id: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ..., max_runs: _Optional[int] = ..., last_acked_seq: _Optional[int] = ..., runs_assigned: _Optional[int] = ..., gpus: _Optional[_Iterable[str]] = ..., queues: _Optional[_Iterable[str]] = ...) -> None: ...

class HeldRun(_message.Message):
    __slots__ = ("run_id", "attempt")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("runs", "free_slots", "draining", "paused")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[HeldRun]
    free_slots: int
    draining: bool
    paused: bool
    def __init__(self, runs: _Optional[_Iterable[_Union[HeldRun, _Mapping]]] = ..., free_slots: _Optional[int] = ..., draining: _Optional[bool] = ..., paused: _Optional[bool] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("run_id", "attempt", "argv", "pid", "time")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    argv: _containers.RepeatedScalarFieldContainer[str]
    pid: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., argv: _Optional[_Iterable[str]] = ..., pid: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricBatch(_message.Message):
    __slots__ = ("run_id", "attempt", "records")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    records: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricRecord]
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_common_pb2.MetricRecord, _Mapping]]] = ...) -> None: ...

class RunFinished(_message.Message):
    __slots__ = ("run_id", "attempt", "state", "exit_code", "reason", "time", "log_tail")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    state: _common_pb2.RunState
    exit_code: int
    reason: str
    time: _timestamp_pb2.Timestamp
    log_tail: bytes
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.RunState, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., log_tail: _Optional[bytes] = ...) -> None: ...

class RunOutput(_message.Message):
    __slots__ = ("run_id", "attempt", "data")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    data: bytes
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "ack", "assign", "stop_run", "drain")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    STOP_RUN_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    ack: Ack
    assign: Assign
    stop_run: StopRun
    drain: Drain
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., assign: _Optional[_Union[Assign, _Mapping]] = ..., stop_run: _Optional[_Union[StopRun, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("heartbeat_interval_s", "lease_s", "stop_run_ids", "applied_seq", "stop_runs")
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    STOP_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQ_FIELD_NUMBER: _ClassVar[int]
    STOP_RUNS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_s: float
    lease_s: float
    stop_run_ids: _containers.RepeatedScalarFieldContainer[str]
    applied_seq: int
    stop_runs: _containers.RepeatedCompositeFieldContainer[HeldRun]
    def __init__(self, heartbeat_interval_s: _Optional[float] = ..., lease_s: _Optional[float] = ..., stop_run_ids: _Optional[_Iterable[str]] = ..., applied_seq: _Optional[int] = ..., stop_runs: _Optional[_Iterable[_Union[HeldRun, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq", "refused")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    refused: str
    def __init__(self, seq: _Optional[int] = ..., refused: _Optional[str] = ...) -> None: ...

class Assign(_message.Message):
    __slots__ = ("run_id", "sweep_id", "attempt", "params", "argv", "metric_name", "literal_argv")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    LITERAL_ARGV_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    sweep_id: str
    attempt: int
    params: _common_pb2.ParamMap
    argv: _containers.RepeatedScalarFieldContainer[str]
    metric_name: str
    literal_argv: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, run_id: _Optional[str] = ..., sweep_id: _Optional[str] = ..., attempt: _Optional[int] = ..., params: _Optional[_Union[_common_pb2.ParamMap, _Mapping]] = ..., argv: _Optional[_Iterable[str]] = ..., metric_name: _Optional[str] = ..., literal_argv: _Optional[_Iterable[int]] = ...) -> None: ...

class StopRun(_message.Message):
    __slots__ = ("run_id", "reason", "attempt")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    attempt: int
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
