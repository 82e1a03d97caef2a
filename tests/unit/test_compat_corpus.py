"""Real W&B sweep configurations (tests/data/wandb-configs): what must be accepted or refused.

EXPECTED.tsv says accept / refuse / either per file. Accepted files must also render the argv
W&B's agent would give for a sample point; refused ones must name the offending keys.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sweepd.client.validate import validate_command
from sweepd.coordinator.config import ConfigError, nest, parse_config, render_command
from sweepd.coordinator.config import distributions as dist

CORPUS = Path(__file__).resolve().parents[1] / "data" / "wandb-configs"
ROWS = list(csv.DictReader((CORPUS / "EXPECTED.tsv").open(encoding="utf-8"), delimiter="\t"))
BY_VERDICT = {
    v: [r["file"] for r in ROWS if r["expected"] == v] for v in ("accept", "refuse", "either")
}

# For each refused file, keys (or macros) its problems must name, taken from the `why` column.
REFUSED_KEYS: dict[str, list[str]] = {
    "037": ["model_params.max_freq", "model_params.weight_decay", "model_params.attn_dropout"],
    "043": ["num_train_epochs"],
    "045": ["CLIP_EPS", "ENT_COEF", "values"],
    "049": ["${batch-size}", "${num-epochs}", "${lr}"],
    "075": ["env_params", "env_name", "metric"],
    "085": ["run_name", "args"],
    "089": ["similarity", "n_conv_layers", "layer_sizes"],
    "091": ["scheduler", "value"],
}
ARGS_MACRO_PREFIX = {"${args}": "--", "${args_no_hyphens}": ""}


def _text(name: str) -> str:
    return (CORPUS / name).read_bytes().decode("utf-8")


def test_corpus_is_complete() -> None:
    assert len(ROWS) == len(list(CORPUS.glob("*.yaml")))
    assert {r["file"][:3] for r in ROWS if r["expected"] == "refuse"} == set(REFUSED_KEYS)


@pytest.mark.parametrize("name", BY_VERDICT["accept"])
def test_accepted(name: str) -> None:
    config = parse_config(_text(name), filename=name)
    rng = np.random.default_rng(0)
    point = {p.path: dist.sample(p, rng) for p in config.parameters}
    argv = render_command(config, point)
    args = nest(point)
    assert list(args) == sorted(args), "top-level names in W&B's sorted order"
    for macro, prefix in ARGS_MACRO_PREFIX.items():
        if macro in config.command:
            expected = [f"{prefix}{k}={v}" for k, v in args.items()]
            start = argv.index(expected[0])
            assert argv[start : start + len(expected)] == expected
    if "${args_no_boolean_flags}" in config.command:
        for k, v in args.items():
            assert (f"--{k}" in argv) == (v is True)
            assert (f"--{k}=False" in argv) is False
    assert not any(item.startswith("${args") for item in argv)
    result = CliRunner().invoke(validate_command, [str(CORPUS / name)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", BY_VERDICT["refuse"])
def test_refused_naming_the_key(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_text(name), filename=name)
    text = "\n".join(f"{p.path} {p.message}" for p in err.value.problems)
    for key in REFUSED_KEYS[name[:3]]:
        assert key in text, f"{key} not named in:\n{text}"
    assert all(p.path or p.message for p in err.value.problems)
    result = CliRunner().invoke(validate_command, [str(CORPUS / name)])
    assert result.exit_code == 2


@pytest.mark.parametrize("name", BY_VERDICT["either"])
def test_either_accepts_with_notice_or_refuses_with_reason(name: str) -> None:
    try:
        config = parse_config(_text(name), filename=name)
    except ConfigError as err:
        assert err.problems and all(p.message for p in err.problems)
    else:
        assert config.notices


def test_exact_argv_examples() -> None:
    config = parse_config(_text("069_varuniyer_BLooP_no-boolean-flags.yaml"))
    point = {p.path: dist.ppf(p, 0.0) for p in config.parameters}
    assert render_command(config, point) == [
        "${interpreter}",
        "main.py",
        "--alpha=-1",
        "--beam_width=8",
        "--dataset=cnndm",
        "--max_input_len=4096",
        "--model=meta-llama/Llama-3.1-8B-Instruct",
        "--split=validation",
        "--subsample=0.1",
        "--use_fw",
    ]
    config = parse_config(_text("027_HekpoMaH_DEAR_nested-deq.yaml"))
    point = {p.path: dist.ppf(p, 0.0) for p in config.parameters}
    assert render_command(config, point) == [
        "${env}",
        "${interpreter}",
        "--deq={'deq_max_iter': 40}",
        "--jac_reg=True",
        "--jac_reg_tau=1e-05",
        "--seed=1",
        "--weight_decay=0",
    ]
    config = parse_config(_text("083_LeoGrin_tabular-benchmark_ft-q-uniform-no-q.yaml"))
    d_token = next(p for p in config.parameters if p.name == "d_token")
    assert dist.ppf(d_token, 0.5) == 288.0  # q defaults to the float 1.0, as in W&B
    config = parse_config(_text("093_AMorporkian_kohya_ss_args-mid-command.yaml"))
    assert config.command[-2:] == ("--train_batch_size", "5")
