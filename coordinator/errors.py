"""The coordinator's one exception hierarchy, mapped once to gRPC status codes.

Servicers never pick status codes themselves: they let these propagate and the server's
error interceptor (``servicers/_errors.py``) turns each into its status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, located precisely.

    ``path`` is where the problem is (``parameters.lr.max``), ``message`` what is wrong, and
    ``fix`` what the user should write instead (may be empty when the message says it all).
    """

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} ({self.fix})" if self.fix else text


class SweepdError(Exception):
    """Base of every error the coordinator raises on purpose."""


class InvalidArgument(SweepdError):
    """The request is malformed; nothing was changed. Maps to INVALID_ARGUMENT."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


class ConfigError(InvalidArgument):
    """A sweep configuration was refused; ``problems`` lists every problem found."""

    @property
    def message(self) -> str:
        head = "invalid sweep configuration"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        return "\n".join([f"{head}, {len(self.problems)} problems:"]
                         + [f"  {p}" for p in self.problems])


class NotFound(SweepdError):
    """A named sweep, run or worker does not exist. Maps to NOT_FOUND."""


class FailedPrecondition(SweepdError):
    """The request is valid but the current state forbids it. Maps to FAILED_PRECONDITION."""


class PermissionDenied(SweepdError):
    """The caller may not act on this resource. Maps to PERMISSION_DENIED."""


class AlreadyExists(SweepdError):
    """The resource is taken by someone else (a worker id with a live session). Maps to
    ALREADY_EXISTS."""


class ResourceExhausted(SweepdError):
    """A configured limit would be exceeded. Maps to RESOURCE_EXHAUSTED."""


class Unavailable(SweepdError):
    """The coordinator could not commit the change (its database failed); nothing of the
    request was kept, and the same request may be sent again. Maps to UNAVAILABLE."""


class StorageFull(Unavailable):
    """The database's disk is full; nothing of the request was kept, and it may be sent again
    once space is freed. Maps to RESOURCE_EXHAUSTED."""
