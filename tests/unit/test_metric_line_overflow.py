"""A number too large for a double is refused, as the README says, not stored as infinity;
``Infinity`` written as such is stored (hostile tester's small finding on issue #11)."""

from __future__ import annotations

import math

import pytest
from sweepd.common.runfile import UnusableLine, read_metric_line


@pytest.mark.parametrize(("line", "why"), [
    ('{"loss": 1e999}', "'loss' is 1e999, too large for a double"),
    ('{"loss": -1e999}', "'loss' is -1e999, too large for a double"),
    ('{"loss": 1, "_timestamp": 1e999}', "_timestamp is 1e999, not a time"),
    ('{"loss": 1, "_step": 1e999}', "_step is 1e999"),
])
def test_a_number_past_a_doubles_range_is_refused_with_why(line: str, why: str) -> None:
    with pytest.raises(UnusableLine) as err:
        read_metric_line(line)
    assert why in str(err.value)


def test_infinity_as_json_writers_write_it_is_stored() -> None:
    values, _, _ = read_metric_line(
        '{"loss": Infinity, "neg": -Infinity, "max": 1.7976931348623157e308, "big": [1e999]}')
    assert values["loss"] == math.inf and values["neg"] == -math.inf
    assert values["max"] == 1.7976931348623157e308 and "big" not in values
