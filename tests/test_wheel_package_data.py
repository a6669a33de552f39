"""The wheel is the product outside a checkout: one `deem_eval` namespace (no generic top-level packages), the
shipped DEEM-micro models, the stage configs and the paper's reported tables, and a working command."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(out), str(ROOT)], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return next(out.glob("deem_eval-*.whl"))


@pytest.mark.slow
def test_wheel_has_one_namespace_and_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"deem_eval"}
    shipped = {"deem_eval/" + p.relative_to(ROOT).as_posix()
               for p in (ROOT / "model_adapters/deem/weights").rglob("*") if p.is_file()}
    assert shipped and shipped <= names, sorted(shipped - names)[:5]
    assert {"deem_eval/model_adapters/deem/training/configs/pretrain.toml",
            "deem_eval/model_adapters/deem/training/configs/sft.toml"} <= names
    reported = {f"deem_eval/views/leaderboard/reported_tables/{p.name}"
                for p in (ROOT / "results/reported").iterdir() if p.is_file()}
    assert reported and reported <= names
    assert not any("/perf/" in n for n in names)               # speed scripts are not part of the package


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # the dependencies come from this environment (appended after the new venv's own site-packages)
    (site / "_deem_eval_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = ("import deem_eval, importlib.util as u; print(deem_eval.__file__); "
             "print(u.find_spec('benchmarks'), u.find_spec('model_adapters'))")
    where = subprocess.run([str(python), "-c", probe],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120)
    file, specs = where.stdout.strip().splitlines()
    assert file.startswith(str(site)) and specs == "None None"
    cli = venv / "bin" / "deem-eval"
    listed = subprocess.run([str(cli), "list", "models"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False, timeout=120)
    assert listed.returncode == 0 and "deem" in listed.stdout, listed.stderr[-2000:]
    board = subprocess.run([str(cli), "leaderboard", "--reported", "--format", "md"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=False, timeout=120)
    assert board.returncode == 0, board.stderr[-2000:]
    assert "DEEM" in board.stdout
