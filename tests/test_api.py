"""The Python API is the command's own code path: same run directory contents, same numbers, same errors."""

from __future__ import annotations

import json

import pytest

import deem_eval
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _answers(run_dir):
    """Each sample line without its timing (the only field two identical runs may differ in)."""
    lines = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if not k.startswith("latency")} for rec in lines]


def test_evaluate_matches_the_command_line(tmp_path, capsys):
    result = deem_eval.evaluate("random", "synthscenes-yesno", model_options={"p_yes": 0.7}, limit=40,
                                out=tmp_path / "api")
    assert isinstance(result, deem_eval.Evaluation)
    assert result.model == "random" and len(result.runs) == 1
    (run,) = result.runs
    assert run.metrics is not None and run.metrics["n_answered"] == 40
    assert main(["--model", "random", "-M", "p_yes=0.7", "--bench", "synthscenes-yesno", "--limit", "40",
                 "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    (cli_dir,) = (tmp_path / "cli").iterdir()
    assert _answers(cli_dir) == _answers(run.run_dir)
    assert _metrics(cli_dir)["overall"] == _metrics(run.run_dir)["overall"] == run.metrics["overall"]


def test_typed_and_string_options_are_the_same_run(tmp_path):
    first = deem_eval.evaluate("random", "synthscenes-yesno", model_options={"p_yes": 0.25}, limit=10,
                               out=tmp_path)
    again = deem_eval.evaluate("random", ["synthscenes-yesno"], model_options={"p_yes": "0.25"}, limit=10,
                               out=tmp_path)
    assert again.runs[0].run_dir == first.runs[0].run_dir        # the complete identical run is reused
    assert again.runs[0].resumed_from == 10
    assert first.runs[0].metrics["overall"] == again.runs[0].metrics["overall"]


def test_an_identical_complete_run_is_reused_unless_forced(tmp_path, capsys):
    argv = ["--model", "random", "--bench", "synthscenes-yesno", "--limit", "8", "--out", str(tmp_path),
            "--no-progress"]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "reusing the identical complete run" in capsys.readouterr().err
    assert len(list(tmp_path.iterdir())) == 1
    assert main([*argv, "--force"]) == 0
    assert len(list(tmp_path.iterdir())) == 2
    assert main([*argv, "--parser", "pope-official"]) == 0        # another parser is another run's numbers
    assert len(list(tmp_path.iterdir())) == 3


def test_unknown_options_are_named_with_the_valid_ones(tmp_path):
    with pytest.raises(DeemEvalError, match="has no option 'p_no'.*p_yes"):
        deem_eval.evaluate("random", "synthscenes-yesno", model_options={"p_no": 1}, out=tmp_path)
    with pytest.raises(DeemEvalError, match="give --bench NAME"):
        deem_eval.evaluate("random", bench_options={"x": 1}, split_dir=tmp_path, out=tmp_path)


def test_an_adapter_outside_the_contract_is_refused(monkeypatch, tmp_path):
    from dataclasses import dataclass

    from deem_eval import api

    @dataclass(frozen=True)
    class NoOptions:
        pass

    class Loose:                       # answers, but does not derive from ModelAdapter
        Config = NoOptions

        def __init__(self, config):
            self.config = config

    class Registry:
        def get(self, name):
            return Loose

    monkeypatch.setattr(api, "MODELS", Registry())
    with pytest.raises(DeemEvalError, match="does not derive from deem_eval.core.adapters.ModelAdapter"):
        api.build_adapter("loose", {})


def test_import_deem_eval_stays_light():
    import subprocess
    import sys

    code = "import sys, deem_eval; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
