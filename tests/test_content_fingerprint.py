"""Resuming is keyed by what the adapter loaded: a changed answers file or checkpoint is a new run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from deem_eval.cli import main
from deem_eval.core import fingerprint
from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.baselines import Replay, ReplayConfig
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import STRICT


def _answers(path: Path, split, *, skip: int = 0, flip: bool = False) -> Path:
    """One answer per sample (the right one, or the wrong one with `flip`), leaving out the last `skip`."""
    samples = list(split.samples)[:len(split.samples) - skip]
    right = {True: "No.", False: "Yes."}
    path.write_text("".join(json.dumps({"id": s.id, "answer": right[(s.answer == "yes") == flip]}) + "\n"
                            for s in samples))
    return path


class _StoppingReplay(Replay):
    """Replay that is interrupted (as by Ctrl-C) after `stop_after` batches."""

    def __init__(self, config: ReplayConfig, stop_after: int):
        super().__init__(config)
        self.calls, self.stop_after = 0, stop_after

    def generate(self, batch):
        self.calls += 1
        if self.calls > self.stop_after:
            raise KeyboardInterrupt
        return super().generate(batch)


def _opts(tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(out=tmp_path / "runs", progress=False, batch_size=2, **kw)


def _interrupted(tiny_split, tmp_path: Path, answers: Path) -> Path:
    with pytest.raises(KeyboardInterrupt):
        run(_StoppingReplay(ReplayConfig(path=answers), stop_after=2), tiny_split, STRICT, _opts(tmp_path))
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_unchanged_answers_file_resumes(tiny_split, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", tiny_split)
    first = _interrupted(tiny_split, tmp_path, answers)
    result = run(Replay(ReplayConfig(path=answers)), tiny_split, STRICT, _opts(tmp_path))
    assert result.run_dir == first and result.resumed_from == 4
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["content_fingerprint"] == "sha256:" + fingerprint.file_sha256(answers)


def test_changed_answers_file_is_a_new_run(tiny_split, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", tiny_split)
    first = _interrupted(tiny_split, tmp_path, answers)
    _answers(answers, tiny_split, flip=True)                       # same path, another model's answers
    result = run(Replay(ReplayConfig(path=answers)), tiny_split, STRICT, _opts(tmp_path))
    assert result.run_dir != first and result.resumed_from == 0
    assert result.metrics["overall"]["accuracy"]["value"] == 0.0   # only the new file's answers, none mixed in
    assert len((first / "samples.jsonl").read_text().splitlines()) == 4   # the old run is left alone
    old, new = (json.loads((p / "manifest.json").read_text()) for p in (first, result.run_dir))
    assert old["content_fingerprint"] != new["content_fingerprint"] and old["run_key"] != new["run_key"]


def test_changed_answers_file_is_refused_in_an_explicit_run_dir(tiny_split, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", tiny_split)
    run_dir = tmp_path / "the-run"
    with pytest.raises(KeyboardInterrupt):
        run(_StoppingReplay(ReplayConfig(path=answers), stop_after=1), tiny_split, STRICT,
            _opts(tmp_path, run_dir=run_dir))
    _answers(answers, tiny_split, flip=True)
    with pytest.raises(DeemEvalError, match="files the model loads"):
        run(Replay(ReplayConfig(path=answers)), tiny_split, STRICT, _opts(tmp_path, run_dir=run_dir))


def test_cli_rerun_after_the_replay_file_changed(tiny_split, tmp_path):
    """The command-line story: an unfinished replay run (answers missing), the file changed, same command."""
    answers = _answers(tmp_path / "answers.jsonl", tiny_split, skip=4)
    out = tmp_path / "runs"
    command = ["--model", "replay", "-M", f"path={answers}", "--split-dir", str(tiny_split.directory),
               "--out", str(out), "--no-progress"]
    main(command)
    (first,) = out.iterdir()
    assert json.loads((first / "manifest.json").read_text())["finished_utc"] is None
    main(command)                                                    # unchanged: resumes into the same run
    assert list(out.iterdir()) == [first]
    _answers(answers, tiny_split)                                    # now complete: another file
    assert main(command) == 0
    runs = sorted(out.iterdir())
    assert len(runs) == 2 and first in runs
    (second,) = [p for p in runs if p != first]
    assert json.loads((second / "metrics.json").read_text())["complete"]


# ---- weights ---------------------------------------------------------------------------------------

def _checkpoint(directory: Path, scale: float = 1.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "deem_config.json").write_text('{"hidden": 8}')
    save_file({"a.weight": np.full((64, 64), scale, np.float32), "b.bias": np.arange(300, dtype=np.float32)},
              str(directory / "deem.safetensors"))
    (directory / "llm").mkdir(exist_ok=True)
    save_file({"w": np.ones(1000, np.float32) * scale}, str(directory / "llm" / "model.safetensors"))
    return directory


@pytest.mark.parametrize("full_hash_max", [fingerprint.FULL_HASH_MAX, 0])   # whole files, and sampled
def test_directory_fingerprint_follows_contents_not_mtimes(tmp_path, monkeypatch, full_hash_max):
    monkeypatch.setattr(fingerprint, "FULL_HASH_MAX", full_hash_max)
    ckpt = _checkpoint(tmp_path / "ckpt")
    before = fingerprint.directory_fingerprint(ckpt)
    weights = ckpt / "llm" / "model.safetensors"
    stat = weights.stat()
    _checkpoint(ckpt, scale=2.0)                                     # retrained: same names, shapes and sizes
    assert weights.stat().st_size == stat.st_size
    assert fingerprint.directory_fingerprint(ckpt) != before
    _checkpoint(ckpt)
    os.utime(weights, (stat.st_atime + 100, stat.st_mtime + 100))   # touched only: the same model
    assert fingerprint.directory_fingerprint(ckpt) == before
    (ckpt / "deem_config.json").write_text('{"hidden": 9}')
    assert fingerprint.directory_fingerprint(ckpt) != before


def test_sampled_digest_sees_a_change_in_any_tensor(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "FULL_HASH_MAX", 0)
    path = tmp_path / "w.safetensors"
    tensors = {f"t{i}": np.zeros(5000, np.float32) for i in range(5)}
    save_file(tensors, str(path))
    before = fingerprint.weights_digest(path)
    assert before.startswith("sampled:")
    tensors["t3"][0] = 1.0
    save_file(tensors, str(path))
    assert fingerprint.weights_digest(path) != before


def test_hub_snapshot_is_keyed_by_its_commit_and_local_dirs_by_top_level_files(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "models--org--name" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    assert fingerprint.checkpoint_fingerprint(snapshot) == f"hub:{commit}"
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_text('{"model_type": "llava"}')
    save_file({"w": np.zeros(10, np.float32)}, str(local / "model.safetensors"))
    before = fingerprint.checkpoint_fingerprint(local)
    (local / "checkpoint-100").mkdir()                               # a training run's leftovers: not loaded
    (local / "checkpoint-100" / "config.json").write_text("{}")
    assert fingerprint.checkpoint_fingerprint(local) == before
    save_file({"w": np.ones(10, np.float32)}, str(local / "model.safetensors"))
    assert fingerprint.checkpoint_fingerprint(local) != before


def test_hf_loading_fingerprint_of_a_local_checkpoint(tmp_path):
    from deem_eval.model_adapters.hf import loading

    local = tmp_path / "m"
    local.mkdir()
    (local / "config.json").write_text("{}")
    checkpoint = loading.resolve_checkpoint(str(local))
    assert loading.checkpoint_fingerprint(checkpoint).startswith("dir:")
    assert loading.checkpoint_fingerprint(loading.Checkpoint("org/not-cached-anywhere", "x", False)) is None


def test_deem_fingerprint_of_the_shipped_checkpoint():
    from deem_eval.model_adapters.deem.adapter import DeemAdapter, shipped_checkpoint

    adapter = DeemAdapter.__new__(DeemAdapter)                       # the method only needs what was loaded
    adapter._weights_dir = shipped_checkpoint("deem-micro")
    assert adapter.content_fingerprint() == fingerprint.directory_fingerprint(adapter._weights_dir)
    adapter._weights_dir = None                                      # a random-initialised preset
    assert adapter.content_fingerprint() is None
