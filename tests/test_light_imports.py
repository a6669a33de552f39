"""Scoring and comparing runs need none of the heavy parts (torch, diffusers, OpenCV, matplotlib): a log file
can be scored on a machine that only installed what scoring needs."""

from __future__ import annotations

import subprocess
import sys

from deem_eval.cli import main

HEAVY = ("torch", "transformers", "diffusers", "cv2", "matplotlib", "imagecorruptions", "skimage")


def test_score_and_leaderboard_import_no_heavy_package(tiny_split, tmp_path):
    assert main(["--model", "random", "--split-dir", str(tiny_split.directory), "--out", str(tmp_path / "runs"),
                 "--no-progress"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    code = ("import sys; from deem_eval.cli import main; "
            f"assert main(['score', {str(run)!r}]) == 0; assert main(['leaderboard', {str(run)!r}]) == 0; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_report_figures_without_matplotlib_name_the_extra(monkeypatch):
    import builtins

    import pytest

    from deem_eval.analysis import plots
    from deem_eval.core.errors import DeemEvalError

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(DeemEvalError, match=r"deem-eval\[report\]"):
        plots._figure(4, 3)
