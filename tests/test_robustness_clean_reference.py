"""The clean reference of a corrupted split: same source split (by fingerprint), same source questions only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from leaderboard_fakes import make_run, save_split, synth_samples

from deem_eval.analysis.robustness import find_clean_run, source_fingerprint, source_id, summarize_run
from deem_eval.analysis.scored_runs import load_scored
from deem_eval.cli import main
from deem_eval.core.splits import BuilderInfo, Sample, Split
from deem_eval.run.catalog import load_run

SUBSET_IMAGES = 2      # corrupted split: images 0-1 of a 10-image clean split


def _corrupted(source: Split, directory: Path, name: str = "synth-c-fake") -> Split:
    """A corrupted split as derive.py writes it: ids `<source id>@<corruption>-<severity>`, source fingerprint."""
    samples = [Sample(f"{s.id}@{c}-{v}", f"images/{c}/{v}/{s.image}", s.question, s.answer,
                      {**s.group, "corruption": c, "severity": v})
               for s in source.samples if int(s.group["image_id"]) < SUBSET_IMAGES
               for c in ("gaussian_noise", "motion_blur") for v in (1, 2)]
    split = Split.create(name=name, benchmark="synth-c", samples=samples, image_root=".",
                         builder=BuilderInfo("corrupt", {"source_split": source.name}, 0, source.fingerprint))
    return split.save(directory)


def _clean_answer(sample: Sample) -> str:
    """Right on the subset's source images, wrong elsewhere: 100% on the subset, 20% on the whole split."""
    right = int(sample.group["image_id"]) < SUBSET_IMAGES
    return sample.answer if right else ("no" if sample.answer == "yes" else "yes")


def _always_yes(sample: Sample) -> str:
    return "yes"


@pytest.fixture()
def world(tmp_path):
    source = save_split(tmp_path / "src", "synth-fake", "synth", synth_samples(10))
    # same benchmark name, same ids, other content: a different source
    other = save_split(tmp_path / "other", "synth-other", "synth",
                       [Sample(s.id, s.image, s.question.replace("circle", "square"), s.answer, s.group)
                        for s in synth_samples(10)])
    corrupted = _corrupted(source, tmp_path / "c")
    runs = tmp_path / "runs"
    return {"source": source, "other": other, "corrupted": corrupted, "runs": runs,
            "clean": load_run(make_run(runs, source, "m", _clean_answer)),
            "other_run": load_run(make_run(runs, other, "m", lambda s: s.answer)),
            "corrupted_run": load_run(make_run(runs, corrupted, "m", _always_yes))}


def test_source_id_and_fingerprint(world):
    assert source_id("synth-fake/0001/yes@motion_blur-2") == "synth-fake/0001/yes"
    assert source_id("plain/id") == "plain/id"
    assert source_fingerprint(world["corrupted"]) == world["source"].fingerprint
    assert source_fingerprint(world["source"]) is None


def test_drop_uses_only_the_subsets_source_questions(world):
    clean = load_scored(world["clean"])
    assert float(clean.correct.mean()) == pytest.approx(0.2)        # the whole clean run
    s = summarize_run(load_scored(world["corrupted_run"]), clean)
    assert s is not None
    assert s.clean.n == 2 * SUBSET_IMAGES and s.clean.accuracy.value == pytest.approx(1.0)
    assert (s.clean_matched, s.clean_wanted) == (4, 4)
    assert s.mean_accuracy == pytest.approx(0.5)                      # always "yes" on a balanced split
    assert s.mean_drop == pytest.approx(0.5)                          # 1.0 - 0.5, not 0.2 - 0.5
    assert "4 of its 20 questions" in s.clean_source and world["clean"].path.name in s.clean_source
    assert s.pooled_by_severity[0].accuracy.value == pytest.approx(1.0)
    assert s.pooled_by_severity[1].n == 8 and s.pooled_by_severity[1].accuracy.ci_low < 0.5


def test_clean_run_is_matched_by_source_fingerprint(world):
    corrupted = load_scored(world["corrupted_run"])
    candidates = [load_scored(world["other_run"]), load_scored(world["clean"]), corrupted]
    found, why = find_clean_run(corrupted, candidates, source_fingerprint(world["corrupted"]))
    assert found is not None and found.run.path == world["clean"].path and why == ""
    # only a run on a different source of the same benchmark name: not used, and the table says why
    found, why = find_clean_run(corrupted, candidates[:1], source_fingerprint(world["corrupted"]))
    assert found is None and "no run of m on source split" in why
    s = summarize_run(corrupted, found, no_clean_reason=why)
    assert s.clean is None and s.mean_drop is None and s.clean_source == why and s.clean_matched is None
    found, why = find_clean_run(corrupted, candidates, None)
    assert found is None and "records no source fingerprint" in why


def _robust_rows(out: Path) -> list[list[str]]:
    html = (out / "index.html").read_text(encoding="utf-8")
    root = ET.fromstring(html.split("\n", 1)[1])
    section = next(s for s in root.iter("section") if s.get("id") == "robustness")
    return [["".join(td.itertext()) for td in tr] for tr in section.find(".//table").findall("./tbody/tr")]


def test_report_uses_the_exact_source_run(world, tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(world["runs"]), "--out", str(out), "--draws", "100", "--no-progress"]) == 0
    (row,) = _robust_rows(out)
    assert row[2].startswith("100.0") and row[4] == "50.0"
    assert world["clean"].path.name in row[7] and row[8] == "4/4"


def test_report_without_the_exact_source_shows_no_drop(world, tmp_path):
    runs = tmp_path / "runs2"
    make_run(runs, world["other"], "m", lambda s: s.answer)
    make_run(runs, world["corrupted"], "m", _always_yes)
    out = tmp_path / "out2"
    assert main(["report", str(runs), "--out", str(out), "--draws", "100", "--no-progress"]) == 0
    (row,) = _robust_rows(out)
    assert row[2] == "-" and row[4] == "-" and row[8] == "-"
    assert "no run of m on source split" in row[7]


def test_a_model_keeps_its_colour_in_every_figure(tmp_path):
    from matplotlib.colors import to_hex
    from report_world import MODELS, make_world

    from deem_eval.analysis.plots import model_colors

    runs = make_world(tmp_path)
    out = tmp_path / "out"
    assert main(["report", str(runs), "--out", str(out), "--draws", "100", "--no-progress"]) == 0
    colour = to_hex(model_colors(list(MODELS))["deem-7b"])
    for name in ("accuracy_vs_severity", "yes_ratio_vs_f1"):
        assert colour in (out / "plots" / f"{name}.svg").read_text(encoding="utf-8"), name
