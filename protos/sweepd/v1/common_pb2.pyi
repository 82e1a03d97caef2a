import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PENDING: _ClassVar[RunState]
    RUN_STATE_ASSIGNED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_FINISHED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_STOPPED: _ClassVar[RunState]
    RUN_STATE_LOST: _ClassVar[RunState]
    RUN_STATE_CANCELED: _ClassVar[RunState]

class SweepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_STATE_UNSPECIFIED: _ClassVar[SweepState]
    SWEEP_STATE_RUNNING: _ClassVar[SweepState]
    SWEEP_STATE_PAUSED: _ClassVar[SweepState]
    SWEEP_STATE_FINISHED: _ClassVar[SweepState]
    SWEEP_STATE_STOPPED: _ClassVar[SweepState]
    SWEEP_STATE_CANCELED: _ClassVar[SweepState]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PENDING: RunState
RUN_STATE_ASSIGNED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_FINISHED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_STOPPED: RunState
RUN_STATE_LOST: RunState
RUN_STATE_CANCELED: RunState
SWEEP_STATE_UNSPECIFIED: SweepState
SWEEP_STATE_RUNNING: SweepState
SWEEP_STATE_PAUSED: SweepState
SWEEP_STATE_FINISHED: SweepState
SWEEP_STATE_STOPPED: SweepState
SWEEP_STATE_CANCELED: SweepState

class ParamValue(_message.Message):
    __slots__ = ("double_value", "int_value", "string_value", "bool_value", "map_value", "list_value", "null_value")
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    double_value: float
    int_value: int
    string_value: str
    bool_value: bool
    map_value: ParamMap
    list_value: ParamList
    null_value: bool
    def __init__(self, double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., map_value: _Optional[_Union[ParamMap, _Mapping]] = ..., list_value: _Optional[_Union[ParamList, _Mapping]] = ..., null_value: _Optional[bool] = ...) -> None: ...

class ParamMap(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParamValue, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, ParamValue]
    def __init__(self, fields: _Optional[_Mapping[str, ParamValue]] = ...) -> None: ...

class ParamList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ParamValue]
    def __init__(self, items: _Optional[_Iterable[_Union[ParamValue, _Mapping]]] = ...) -> None: ...

class MetricRecord(_message.Message):
    __slots__ = ("index", "step", "values", "time")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    index: int
    step: int
    values: _containers.ScalarMap[str, float]
    time: _timestamp_pb2.Timestamp
    def __init__(self, index: _Optional[int] = ..., step: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "sweep_id", "number", "state", "params", "summary", "worker_id", "attempt", "exit_code", "reason", "argv", "created_at", "started_at", "ended_at", "predicted_mean", "predicted_std", "stop", "log_tail", "command")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_MEAN_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_STD_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    id: str
    sweep_id: str
    number: int
    state: RunState
    params: ParamMap
    summary: _containers.ScalarMap[str, float]
    worker_id: str
    attempt: int
    exit_code: int
    reason: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    predicted_mean: float
    predicted_std: float
    stop: StopDecision
    log_tail: str
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., sweep_id: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[_Union[RunState, str]] = ..., params: _Optional[_Union[ParamMap, _Mapping]] = ..., summary: _Optional[_Mapping[str, float]] = ..., worker_id: _Optional[str] = ..., attempt: _Optional[int] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., predicted_mean: _Optional[float] = ..., predicted_std: _Optional[float] = ..., stop: _Optional[_Union[StopDecision, _Mapping]] = ..., log_tail: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class StopDecision(_message.Message):
    __slots__ = ("rule", "reason", "band", "threshold", "value")
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    reason: str
    band: int
    threshold: float
    value: float
    def __init__(self, rule: _Optional[str] = ..., reason: _Optional[str] = ..., band: _Optional[int] = ..., threshold: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("id", "name", "state", "config_text", "method", "metric_name", "metric_goal", "run_counts", "best_run", "notices", "created_at", "updated_at", "state_reason", "run_cap", "queue", "max_concurrent")
    class RunCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_TEXT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_GOAL_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    BEST_RUN_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    RUN_CAP_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: SweepState
    config_text: str
    method: str
    metric_name: str
    metric_goal: str
    run_counts: _containers.ScalarMap[str, int]
    best_run: Run
    notices: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    state_reason: str
    run_cap: int
    queue: str
    max_concurrent: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[SweepState, str]] = ..., config_text: _Optional[str] = ..., method: _Optional[str] = ..., metric_name: _Optional[str] = ..., metric_goal: _Optional[str] = ..., run_counts: _Optional[_Mapping[str, int]] = ..., best_run: _Optional[_Union[Run, _Mapping]] = ..., notices: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_reason: _Optional[str] = ..., run_cap: _Optional[int] = ..., queue: _Optional[str] = ..., max_concurrent: _Optional[int] = ...) -> None: ...
