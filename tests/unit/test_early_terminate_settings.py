"""Config owns the typed early-termination settings (issue 17): parse_config returns them
without importing stopping or search, and stopping builds its rules from them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
from sweepd.coordinator import search
from sweepd.coordinator.config import (
    METHODS,
    AshaSettings,
    HyperbandSettings,
    MedianSettings,
    parse_config,
    parse_early_terminate,
)
from sweepd.coordinator.stopping import (
    AshaRule,
    HyperbandRule,
    MedianRule,
    hyperband_bands,
    rule_for,
)

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (HyperbandSettings, HyperbandRule), (AshaSettings, AshaRule), (MedianSettings, MedianRule),
]


def test_the_config_holds_typed_settings() -> None:
    config = parse_config({
        "method": "random", "metric": {"name": "loss"},
        "parameters": {"x": {"value": 1}},
        "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3},
    })
    assert config.early_terminate == HyperbandSettings(max_iter=27, s=2, eta=3.0)
    assert rule_for(config.early_terminate) == HyperbandRule(max_iter=27, s=2, eta=3)


@pytest.mark.parametrize(
    ("raw", "settings"),
    [
        ({"type": "hyperband", "min_iter": 3}, HyperbandSettings(min_iter=3)),
        ({"type": "hyperband", "min_iter": 2, "eta": 1.5, "strict": False},
         HyperbandSettings(min_iter=2, eta=1.5, strict=False)),
        ({"type": "asha"}, AshaSettings()),
        ({"type": "asha", "min_iter": 2, "max_iter": 50, "eta": 4},
         AshaSettings(min_iter=2, max_iter=50, eta=4.0)),
        ({"type": "median", "n_startup_runs": 3}, MedianSettings(n_startup_runs=3)),
    ],
)
def test_each_type_parses_to_its_settings(raw: dict[str, Any], settings: Any) -> None:
    assert parse_early_terminate(raw) == (settings, [])


@pytest.mark.parametrize(("settings_type", "rule_type"), PAIRS)
def test_settings_and_rules_agree_on_fields_and_defaults(
    settings_type: type[Any], rule_type: type[Any]
) -> None:
    def init_fields(cls: type[Any]) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.init}

    assert init_fields(settings_type) == init_fields(rule_type)
    assert settings_type.rule_type == rule_type.rule_type


def test_rule_for_builds_each_rule_once() -> None:
    assert rule_for(AshaSettings(max_iter=9)) == AshaRule(max_iter=9)
    assert rule_for(MedianSettings()) == MedianRule()
    assert rule_for(AshaSettings(max_iter=9)) is rule_for(AshaSettings(max_iter=9))


@pytest.mark.parametrize("eta", [1.5, 2.0, 3.0, 4.0, 10.0])
@pytest.mark.parametrize("max_iter", [1, 2, 3, 4, 9, 10])
def test_the_no_band_check_matches_stoppings_bands(max_iter: int, eta: float) -> None:
    settings, problems = parse_early_terminate(
        {"type": "hyperband", "max_iter": max_iter, "s": 2, "eta": eta})
    has_bands = bool(hyperband_bands(max_iter=max_iter, s=2, eta=eta))
    assert (settings is not None) == has_bands, problems


def test_config_names_exactly_the_methods_search_registers() -> None:
    assert set(METHODS) == set(search.METHODS)
    assert METHODS[:3] == ("grid", "random", "bayes")  # W&B's first, as errors list them


def test_parsing_a_config_loads_neither_stopping_nor_search() -> None:
    code = (
        "import sys\n"
        "from sweepd.coordinator.config import parse_config\n"
        "c = parse_config({'method': 'bayes', 'metric': {'name': 'l'},"
        " 'parameters': {'x': {'min': 0.0, 'max': 1.0}},"
        " 'early_terminate': {'type': 'asha'}})\n"
        "loaded = [m for m in ('sweepd.coordinator.stopping', 'sweepd.coordinator.search')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print(type(c.early_terminate).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "AshaSettings"


def test_an_unknown_method_lists_the_config_names() -> None:
    from sweepd.coordinator.config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"method": "sobl", "parameters": {"x": {"value": 1}}})
    assert "did you mean 'sobol'?" in str(err.value)
