"""Every fault a user can cause ends in one clear message (exit 2), never a traceback."""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError, SplitFormatError
from deem_eval.core.options import parse_options
from deem_eval.core.splits import Split

REPO = Path(__file__).resolve().parents[1]


def _run(split: Split, out: Path, *extra: str) -> int:
    return main(["--model", "random", "--split-dir", str(split.directory), "--out", str(out), "--no-progress",
                 *extra])


def _break_line(path: Path, lineno: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = lines[lineno - 1].replace(b"Is", b"\xff\xfe", 1)
    path.write_bytes(b"".join(lines))


# ---- 1. invalid UTF-8 ------------------------------------------------------------------------------

def test_invalid_utf8_in_samples_names_file_and_line(tiny_split):
    path = tiny_split.directory / "samples.jsonl"
    _break_line(path, 2)
    with pytest.raises(SplitFormatError, match=r"samples\.jsonl:2: not valid UTF-8"):
        Split.load(tiny_split.directory)


def test_invalid_utf8_in_answers_file_names_file_and_line(tiny_split, tmp_path, capsys):
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(b"".join(json.dumps({"id": s.id, "answer": "yes"}).encode() + b"\n"
                                 for s in tiny_split.samples[:3]) + b'{"id": "x", "answer": "\xff"}\n')
    assert main(["score", "--split", str(tiny_split.directory), "--answers", str(answers)]) == 2
    assert f"{answers}:4: not valid UTF-8" in capsys.readouterr().err


# ---- 2. wrong-typed split.json fields --------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("name", 3), ("samples_sha256", ["abc"]), ("name", None)])
def test_wrong_typed_split_field_is_named(tiny_split, field, value, capsys):
    meta_path = tiny_split.directory / "split.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))
    assert main(["verify", str(tiny_split.directory)]) == 2
    err = capsys.readouterr().err
    assert f"field {field!r} must be a string" in err and str(meta_path) in err


# ---- 3. a damaged run does not hide the others -----------------------------------------------------

@pytest.mark.parametrize("damaged,text", [("manifest.json", "[]"), ("metrics.json", "3"),
                                          ("manifest.json", "7")])
def test_leaderboard_skips_run_whose_json_is_not_an_object(tiny_split, tmp_path, damaged, text, capsys):
    out = tmp_path / "runs"
    assert _run(tiny_split, out, "--seed", "1") == 0
    assert _run(tiny_split, out, "--seed", "2") == 0
    bad = min(out.iterdir())
    (bad / damaged).write_text(text)
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"skipped: {bad}" in captured.out + captured.err


# ---- 4. non-positive batch sizes -------------------------------------------------------------------

@dataclasses.dataclass
class _Config:
    max_batch: int | None = None
    batch_size: int = 4


@pytest.mark.parametrize("key,value", [("max_batch", "0"), ("max_batch", "-2"), ("batch_size", "0")])
def test_non_positive_batch_size_is_refused(key, value):
    with pytest.raises(DeemEvalError, match=f"{key}={value}: must be a positive integer"):
        parse_options(_Config, {key: value}, what="model 'x'")
    assert parse_options(_Config, {"max_batch": "none"}, what="model 'x'").max_batch is None


# ---- 5. OS errors writing a run --------------------------------------------------------------------

def test_out_is_an_existing_file(tiny_split, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "runs"):
        assert _run(tiny_split, out) == 2
        err = capsys.readouterr().err
        assert str(blocker) in err and "cannot write" in err and "Traceback" not in err


def test_disk_full_names_the_path(tiny_split, tmp_path, monkeypatch, capsys):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("deem_eval.core.atomic.os.fsync", full)
    out = tmp_path / "runs"
    assert _run(tiny_split, out) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out) in err


def test_file_size_limit_is_one_message(tiny_split, tmp_path):
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500)); "
            "from deem_eval.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "--model", "random", "--split-dir",
                           str(tiny_split.directory), "--out", str(tmp_path / "runs"), "--no-progress"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "File too large" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---- 6. a torn .corrupt-build.json -----------------------------------------------------------------

def test_torn_corrupt_build_params_start_over(tmp_path, capsys):
    from deem_eval.benchmarks.corruptions.derive import DONE_FILE, PARAMS_FILE, _prepare

    out = tmp_path / "corrupt"
    out.mkdir()
    (out / PARAMS_FILE).write_text('{"version": 1, "se')
    (out / DONE_FILE).write_text(f"{'0' * 64}  images/a.png\n")
    params = {"version": 1, "seed": 0}
    assert _prepare(out, params) == {}
    assert "starting the build over" in capsys.readouterr().err
    assert json.loads((out / PARAMS_FILE).read_text()) == params
    assert not (out / DONE_FILE).exists()


# ---- 7. a malformed images.sha256 line -------------------------------------------------------------

def test_malformed_image_hash_line_is_reported_with_its_number(tiny_split, capsys):
    hashes = tiny_split.directory / "images.sha256"
    n = len(hashes.read_text().splitlines())
    with open(hashes, "a") as handle:
        handle.write("not a hash line\n")
    assert main(["verify", str(tiny_split.directory)]) == 1
    out = capsys.readouterr().out
    assert f"images.sha256:{n + 1}: malformed line" in out and "DIFFERS: : missing" not in out


# ---- 8. a relative --split-dir ---------------------------------------------------------------------

def test_relative_split_dir_is_stored_resolved(tiny_split, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_split.directory.parent)
    out = tmp_path / "runs"
    assert main(["--model", "random", "--split-dir", tiny_split.directory.name, "--out", str(out),
                 "--no-progress"]) == 0
    (run_dir,) = out.iterdir()
    stored = json.loads((run_dir / "manifest.json").read_text())["split_dir"]
    assert Path(stored).is_absolute()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["score", str(run_dir)]) == 0
