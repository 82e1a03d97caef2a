"""The 18 distributions: samples in support, quantisation, shapes, ppf/cdf, probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from sweepd.coordinator.config import distributions as dist
from sweepd.coordinator.config.model import Parameter

P = Parameter
PARAMS = [
    P(("c",), "constant", value="x"),
    P(("cat",), "categorical", values=(1, "a", [2, 2], True)),
    P(("w",), "categorical_w_probabilities", values=(1, 2, 3), probabilities=(0.2, 0.3, 0.5)),
    P(("i",), "int_uniform", min=-2, max=5),
    P(("u",), "uniform", min=-1.0, max=3.0),
    P(("qu",), "q_uniform", min=0, max=1, q=0.25),
    P(("qui",), "q_uniform", min=0, max=100, q=5),
    P(("lu",), "log_uniform", min=-5, max=-2),
    P(("luv",), "log_uniform_values", min=1e-5, max=1e-1),
    P(("qlu",), "q_log_uniform", min=0, max=4, q=1),
    P(("qluv",), "q_log_uniform_values", min=16, max=256, q=8),
    P(("ilu",), "inv_log_uniform", min=0, max=5),
    P(("iluv",), "inv_log_uniform_values", min=1e-4, max=1e-1),
    P(("n",), "normal", mu=1.0, sigma=2.0),
    P(("qn",), "q_normal", mu=0.0, sigma=10.0, q=2),
    P(("ln",), "log_normal", mu=0.0, sigma=1.0),
    P(("qln",), "q_log_normal", mu=2.0, sigma=1.0, q=0.5),
    P(("b",), "beta", a=2.0, b=5.0),
    P(("qb",), "q_beta", a=1.0, b=1.0, q=0.1),
]
IDS = [p.distribution + ("-int" if isinstance(p.q, int) else "") for p in PARAMS]
units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@pytest.mark.parametrize("param", PARAMS, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(u=units)
def test_ppf_lands_in_support_as_plain_python(param: Parameter, u: float) -> None:
    value = dist.ppf(param, u)
    assert dist.in_support(param, value), value
    if dist.is_numeric(param):
        assert type(value) in (int, float)
    if param.q is not None:
        assert math.isclose(value / param.q, round(value / param.q), abs_tol=1e-9)
        assert isinstance(value, int) == isinstance(param.q, int)
    if param.distribution == "int_uniform":
        assert type(value) is int


@pytest.mark.parametrize("param", [p for p in PARAMS if dist.is_numeric(p)], ids=str)
@settings(max_examples=40, deadline=None)
@given(u=st.floats(min_value=0.001, max_value=0.999))
def test_cdf_inverts_ppf(param: Parameter, u: float) -> None:
    value = dist.ppf(param, u)
    back = dist.cdf(param, value)
    assert 0.0 <= back <= 1.0
    if not dist.is_discrete(param) and param.q is None:
        assert back == pytest.approx(u, abs=1e-6)
    else:
        assert dist.ppf(param, back) == value or param.q is not None


@pytest.mark.parametrize("param", [p for p in PARAMS if not dist.is_numeric(p)], ids=str)
def test_categorical_cdf_round_trips(param: Parameter) -> None:
    for v in param.values or (param.value,):
        assert dist.ppf(param, dist.cdf(param, v)) == v


def test_int_uniform_includes_max_and_support_sizes() -> None:
    i = PARAMS[3]
    rng = np.random.default_rng(0)
    seen = {dist.sample(i, rng) for _ in range(2000)}
    assert seen == set(range(-2, 6))
    assert dist.support_size(i) == 8
    assert dist.support_size(PARAMS[5]) == 5  # 0, .25, .5, .75, 1.0
    assert dist.support_size(PARAMS[13]) is None
    assert dist.is_discrete(PARAMS[10]) and not dist.is_discrete(PARAMS[14])


def test_log_forms_have_their_shapes() -> None:
    rng = np.random.default_rng(1)
    by = {p.distribution: p for p in PARAMS}
    # log_uniform (exponents) spans e^min..e^max; *_values spans min..max; logs are uniform.
    for name, lo, hi in [
        ("log_uniform", math.exp(-5), math.exp(-2)),
        ("log_uniform_values", 1e-5, 1e-1),
        ("inv_log_uniform", math.exp(-5), 1.0),
        ("inv_log_uniform_values", 1e-4, 1e-1),
    ]:
        xs = np.array([dist.sample(by[name], rng) for _ in range(3000)])
        assert xs.min() >= lo * (1 - 1e-9) and xs.max() <= hi * (1 + 1e-9)
        logs = (np.log(xs) - math.log(lo)) / (math.log(hi) - math.log(lo))
        assert scipy.stats.kstest(logs, "uniform").pvalue > 1e-3
    assert dist.ppf(by["inv_log_uniform"], 0.0) < dist.ppf(by["inv_log_uniform"], 0.9)


def test_normal_family_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    n = next(p for p in PARAMS if p.distribution == "normal")
    xs = [dist.sample(n, rng) for _ in range(3000)]
    assert scipy.stats.kstest(xs, "norm", args=(1.0, 2.0)).pvalue > 1e-3
    ln = next(p for p in PARAMS if p.distribution == "log_normal")
    ys = [dist.sample(ln, rng) for _ in range(3000)]
    assert scipy.stats.kstest(ys, "lognorm", args=(1.0, 0, 1.0)).pvalue > 1e-3


def test_categorical_probabilities_are_honoured() -> None:
    w = PARAMS[2]
    rng = np.random.default_rng(3)
    draws = [dist.sample(w, rng) for _ in range(6000)]
    observed = [draws.count(v) for v in (1, 2, 3)]
    expected = [6000 * p for p in (0.2, 0.3, 0.5)]
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_grid_values_and_refusals() -> None:
    assert dist.enumerate_grid_values(PARAMS[5]) == [0.0, 0.25, 0.5, 0.75]
    assert dist.enumerate_grid_values(PARAMS[6])[:3] == [0, 5, 10]
    assert len(dist.enumerate_grid_values(PARAMS[6])) == dist.grid_axis_size(PARAMS[6]) == 20
    for p in (PARAMS[2], PARAMS[4], PARAMS[13]):
        with pytest.raises(dist.GridError, match=p.name):
            dist.enumerate_grid_values(p)


def test_value_key_identity() -> None:
    assert dist.value_key(1) == dist.value_key(1.0) != dist.value_key(True)
    assert dist.value_key({"b": 1, "a": [1.0]}) == dist.value_key({"a": [1], "b": 1})
    assert dist.value_key("1") != dist.value_key(1)
