import json
import subprocess
import sys

from conftest import REPO

from deem_eval.cli import main


def test_list_imports_no_heavy_library():
    """`deem-eval list` must stay fast; what keeps it fast is importing no torch/transformers (its speed
    itself is measured outside the test suite, not asserted here)."""
    code = ("import sys; from deem_eval.cli import main; main(['list']); "
            "heavy = [m for m in ('torch', 'transformers', 'diffusers', 'datasets') if m in sys.modules]; "
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "always-yes" in out and "synthscenes-yesno" in out and "strict" in out


def test_unknown_model_suggests(tiny_split, capsys):
    assert main(["--model", "randm", "--split-dir", str(tiny_split.directory)]) == 2
    assert "Did you mean 'random'" in capsys.readouterr().err


def test_unknown_benchmark_and_parser_suggest(capsys):
    assert main(["--model", "random", "--bench", "synthscenes-yesn"]) == 2
    assert "Did you mean 'synthscenes-yesno'" in capsys.readouterr().err
    assert main(["score", "--parser", "strikt", "nowhere"]) == 2


def test_unknown_adapter_option_lists_valid(tiny_split, capsys):
    assert main(["--model", "random", "-M", "temperature=1", "--split-dir", str(tiny_split.directory)]) == 2
    assert "Valid options: p_yes, seed" in capsys.readouterr().err


def test_run_short_form_then_rescore(tiny_split, tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["--model", "random", "--split-dir", str(tiny_split.directory), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (run_dir,) = out.iterdir()
    printed = capsys.readouterr().out
    assert "accuracy" in printed and str(run_dir) in printed
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["complete"] and metrics["n_answered"] == 12
    assert main(["score", str(run_dir)]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["overall"] == metrics["overall"]


def test_seed_flag_reaches_the_adapter(tiny_split, tmp_path):
    def answers(seed):
        out = tmp_path / f"runs{seed}"
        main(["--model", "random", "--split-dir", str(tiny_split.directory), "--out", str(out), "--seed",
              str(seed), "--no-progress"])
        (run_dir,) = out.iterdir()
        return [json.loads(x)["output"] for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert answers(1) != answers(2)


def test_replay_scores_answers_made_elsewhere(tiny_split, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": s.id, "answer": "Yes." if s.answer == "yes" else "No."}) + "\n"
                               for s in tiny_split.samples))
    out = tmp_path / "runs"
    assert main(["--model", "replay", "-M", f"path={answers}", "--split-dir", str(tiny_split.directory),
                 "--out", str(out), "--no-progress"]) == 0
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["overall"]["accuracy"]["value"] == 1.0


def test_replay_missing_file_is_a_clear_error(tiny_split, capsys):
    assert main(["--model", "replay", "-M", "path=/nope.jsonl", "--split-dir", str(tiny_split.directory)]) == 2
    assert "answers file '/nope.jsonl' not found" in capsys.readouterr().err


def test_verify_exit_codes(tiny_split, capsys):
    assert main(["verify", str(tiny_split.directory)]) == 0
    (tiny_split.directory / "images" / "img000.png").write_bytes(b"x")
    assert main(["verify", str(tiny_split.directory)]) == 1
    assert "img000.png: content changed" in capsys.readouterr().out


def test_help_everywhere(capsys):
    assert main(["--help"]) == 0
    assert "deem-eval --model random --bench synthscenes-yesno" in capsys.readouterr().out
    assert main(["build", "--help"]) == 0
    assert "synthscenes" in capsys.readouterr().out
    for command in ("run", "score", "list", "verify"):
        try:
            main([command, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        assert "usage: deem-eval " + command in capsys.readouterr().out


def test_unknown_command(capsys):
    assert main(["leaderbord"]) == 2
    assert "Did you mean 'leaderboard'" in capsys.readouterr().err
