"""`deem-eval leaderboard --paired MODEL`: paired tests of one model against the others, Holm-adjusted."""

from __future__ import annotations

import pytest


def test_holm_adjustment_is_step_down_and_monotone():
    from deem_eval.views.leaderboard.significance import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.2, 0.9, 0.001]) == pytest.approx([0.4, 0.9, 0.003])


def test_paired_prints_every_comparison_with_a_verdict(tmp_path, monkeypatch, capsys):
    from deem_eval.cli import main

    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    runs = tmp_path / "runs"
    for model in ("always-yes", "always-no", "random"):
        assert main(["--model", model, "--bench", "synthscenes-yesno", "--out", str(runs), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(runs), "--paired", "random"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if " vs " in line]
    assert len(lines) == 2 and all(line.strip().split()[1] == "random" for line in lines)
    assert all("p=" in line and "(adj " in line and "significant" in line for line in lines)
    assert "Holm-adjusted over these 2" in out
    assert main(["leaderboard", str(runs), "--paired", "nobody"]) == 0
    assert "no run of that model here" in capsys.readouterr().out
