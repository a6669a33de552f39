"""`deem-eval run --model hf|clip` end to end through the CLI, and data-parallel runs (2 CPU processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deem_eval.cli import main
from deem_eval.core.registry import BENCHMARKS
from tests.hf_tiny import make_yesno_split, single_torch_thread  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pope_split(tmp_path_factory):
    """16 POPE-shaped questions on 8 images, one of which cannot be decoded."""
    return make_yesno_split(tmp_path_factory.mktemp("pope-tiny"), 8, broken=(3,))


def pope_bench() -> list[str]:
    """`--bench pope` (the issue's command form) once the POPE benchmark is registered; it loads --split-dir."""
    return ["--bench", "pope"] if "pope" in BENCHMARKS.names() else []


def run_cli(out: Path, split, *args: str) -> Path:
    argv = ["run", "--split-dir", str(split.directory), "--out", str(out), "--no-progress", *args]
    assert main(argv) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_cli_generate_batch_1_and_16_identical(tiny_llava, pope_split, tmp_path):
    common = ["--model", "hf", "-M", f"path={tiny_llava}", "-M", "max_new_tokens=5", *pope_bench()]
    one = run_cli(tmp_path / "b1", pope_split, *common, "--batch-size", "1")
    sixteen = run_cli(tmp_path / "b16", pope_split, *common, "--batch-size", "16")
    a, b = records(one), records(sixteen)
    assert [r["id"] for r in a] == [r["id"] for r in b] and len(a) == 14      # 2 questions of 1 image failed
    assert [r["output"] for r in a] == [r["output"] for r in b]
    assert len({r["output"] for r in a}) > 4
    metrics = json.loads((sixteen / "metrics.json").read_text())
    assert metrics["n_answered"] == 14 and metrics["n_failed"] == 2
    assert {f["stage"] for f in metrics["failures"]} == {"image"}
    manifest = json.loads((sixteen / "manifest.json").read_text())
    assert manifest["adapter_config"]["preset"] == "llava-1.5"
    assert manifest["adapter_config"]["prompt_suffix"].startswith("\nAnswer the question")


def test_cli_logits_and_both(tiny_llava, pope_split, tmp_path):
    base = ["--model", "hf", "-M", f"path={tiny_llava}", "--batch-size", "16", *pope_bench()]
    logits_run = run_cli(tmp_path / "logits", pope_split, *base, "-M", "scoring=logits")
    recs = records(logits_run)
    assert len(recs) == 14 and all(r["output"] is None and 0 < r["yes_prob"] < 1 for r in recs)
    assert all(r["parsed"] == ("yes" if r["yes_prob"] >= 0.5 else "no") for r in recs)
    overall = json.loads((logits_run / "metrics.json").read_text())["overall"]
    assert {"auroc", "average_precision", "ece"} <= set(overall)
    assert json.loads((logits_run / "manifest.json").read_text())["model_label"] == "hf:tiny_llava:logits"

    both = run_cli(tmp_path / "both", pope_split, *base, "-M", "scoring=both", "-M", "max_new_tokens=3")
    recs_both = records(both)
    assert all(r["output"] is not None and r["yes_prob"] is not None for r in recs_both)
    assert [r["yes_prob"] for r in recs_both] == pytest.approx([r["yes_prob"] for r in recs], abs=1e-5)
    assert "logit_text_agreement" in json.loads((both / "metrics.json").read_text())


def test_cli_clip(tiny_clip, pope_split, tmp_path):
    run_dir = run_cli(tmp_path / "clip", pope_split, "--model", "clip", "-M", f"path={tiny_clip}",
                      "-M", "scoring=both", "--batch-size", "5")
    recs = records(run_dir)
    assert len(recs) == 14 and {r["output"] for r in recs} <= {"yes", "no"}
    assert all(0 < r["yes_prob"] < 1 for r in recs)


def test_cli_bad_hub_id_is_a_clean_error(tmp_path, pope_split, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["run", "--model", "hf", "-M", "path=nobody/no-such-vlm", "--split-dir",
                 str(pope_split.directory), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "hf download nobody/no-such-vlm" in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed")
def test_two_process_run_equals_one_process(tiny_llava, pope_split, tmp_path):
    model = ["--model", "hf", "-M", f"path={tiny_llava}", "-M", "max_new_tokens=4", "-M", "scoring=both",
             "--batch-size", "4"]
    single = run_cli(tmp_path / "one", pope_split, *model)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "0", "-m", "deem_eval", "run",
                           *model, "--split-dir", str(pope_split.directory), "--no-progress",
                           "--out", str(tmp_path / "two")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (parallel,) = (tmp_path / "two").iterdir()
    a, b = records(single), records(parallel)
    ids = [r["id"] for r in b]
    assert ids == sorted(ids) and len(ids) == len(set(ids))                 # sorted, no duplicates
    assert ids == [r["id"] for r in a]                                        # no gaps
    assert [(r["output"], r["parsed"]) for r in b] == [(r["output"], r["parsed"]) for r in a]
    assert [r["yes_prob"] for r in b] == pytest.approx([r["yes_prob"] for r in a], abs=1e-5)
    assert not list(parallel.glob("samples.rank*.jsonl"))                    # rank files merged away
    assert json.loads((parallel / "manifest.json").read_text())["world_size"] == 2
    m1 = json.loads((single / "metrics.json").read_text())
    m2 = json.loads((parallel / "metrics.json").read_text())
    assert m1["overall"]["accuracy"] == m2["overall"]["accuracy"] and m2["n_failed"] == 2
