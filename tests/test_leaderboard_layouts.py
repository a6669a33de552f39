"""Benchmarks declare their own leaderboard columns (LeaderboardLayout on the class, read through BENCHMARKS)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from leaderboard_fakes import accuracy_answerer, make_run, pope_samples, save_split, synth_samples

from deem_eval.core.benchmark import LeaderboardLayout, Slot
from deem_eval.core.registry import BENCHMARKS
from deem_eval.core.splits import Sample
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.table import Layouts


def _shape_samples(n: int = 8) -> list[Sample]:
    return [Sample(f"shape/{kind}/{i:03d}/{a}", f"{kind}{i:03d}.png", f"Is there a {kind}?", a,
                   {"kind": kind, "image_id": f"{kind}{i}"})
            for kind in ("circles", "squares") for i in range(n) for a in ("yes", "no")]


class ShapeBench:
    name = "shapes-test"
    description = "a fake benchmark with its own leaderboard columns"
    leaderboard = LeaderboardLayout(prefix="SHP", field="kind", order=5, metrics=("accuracy", "f1"),
                                    slots=(Slot("shp_c", "SHP-C", {"circles", "c"}),
                                           Slot("shp_s", "SHP-S", {"squares"})),
                                    metric_notes=(("f1", "F1: the shapes note"),))

    def load(self, *, split_dir=None):   # pragma: no cover - the leaderboard never loads a split
        raise NotImplementedError


@pytest.fixture
def shapes_registered():
    BENCHMARKS.register(ShapeBench.name, ShapeBench)
    yield
    BENCHMARKS.unregister(ShapeBench.name)


def test_registered_layout_gets_its_named_columns(tmp_path, shapes_registered):
    shapes = save_split(tmp_path / "sh", "shapes-t", ShapeBench.name, _shape_samples())
    pope = save_split(tmp_path / "p", "pope-t", "pope", pope_samples(4))
    for label, acc in (("a", 0.9), ("b", 0.6)):
        make_run(tmp_path / "runs", shapes, label, accuracy_answerer(label, acc))
        make_run(tmp_path / "runs", pope, label, accuracy_answerer(label, acc))
    board = make_board([tmp_path / "runs"])
    labels = [c.label for c in board.columns]
    # order 5 puts the shapes columns before POPE's (20); metrics: the union of the layouts' defaults
    assert labels[:5] == ["SHP-C", "SHP-S", "POPE-R", "POPE-P", "POPE-A"]
    assert "SHP-C F1" in labels and "SHP-C yes%" not in labels and "POPE-R yes%" in labels
    shp = next(c for c in board.columns if c.label == "SHP-C")
    assert (shp.field, shp.value, shp.slot, shp.benchmark) == ("kind", "circles", "shp_c", ShapeBench.name)
    row = board.measured[0]
    run = row.cells[shp.key].run
    assert row.cells[shp.key].estimate.value == run.metrics["groups"]["kind"]["circles"]["accuracy"]["value"]
    assert [a.label for a in board.benchmark_averages] == ["SHP avg", "POPE avg"]
    assert "F1: the shapes note" in board.notes and any(n.startswith("yes%:") for n in board.notes)


def test_without_registration_the_same_runs_get_generic_columns(tmp_path):
    shapes = save_split(tmp_path / "sh", "shapes-t", ShapeBench.name, _shape_samples())
    for label in ("a", "b"):
        make_run(tmp_path / "runs", shapes, label, accuracy_answerer(label, 0.8))
    assert [c.label for c in make_board([tmp_path / "runs"]).columns] == ["shapes-t acc"]


def test_layout_without_its_group_field_falls_back_to_generic(tmp_path, shapes_registered):
    other = save_split(tmp_path / "s", "synth-t", ShapeBench.name, synth_samples(6))   # no `kind` groups
    for label in ("a", "b"):
        make_run(tmp_path / "runs", other, label, accuracy_answerer(label, 0.8))
    assert [c.label for c in make_board([tmp_path / "runs"]).columns] == ["synth-t acc", "synth-t F1"]


def test_derived_and_unknown_benchmarks(shapes_registered):
    layouts = Layouts()
    assert layouts.get("shapes-test-c") == ShapeBench.leaderboard.derived()     # unregistered, derived name
    assert layouts.get("shapes-test-c").slots == () and layouts.metrics("shapes-test-c") == ["accuracy", "f1"]
    assert layouts.get("pope-c").metrics == ("accuracy", "f1", "yes_ratio") and not layouts.get("pope-c").slots
    assert layouts.get("no-such-benchmark") is None and layouts.metrics("no-such-benchmark") == ["accuracy"]
    assert layouts.get("synthscenes-yesno") is None                             # registered, no layout
    assert [n for n, _ in layouts.with_slots()][:3] == ["shapes-test", "robustvqa", "pope"]


def test_slot_values_are_lower_case_frozensets():
    slot = Slot("x", "X-A", ["Adversarial", "a"])
    assert slot.values == frozenset({"adversarial", "a"})
    assert LeaderboardLayout(slots=(slot,)).label == "X" and LeaderboardLayout().label is None


def test_benchmark_modules_with_layouts_import_without_torch():
    code = ("import sys; import deem_eval.benchmarks.pope.benchmark, deem_eval.benchmarks.robustvqa.benchmark; "
            "print(sorted(m for m in ('torch', 'transformers', 'cv2', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
