"""MetricsDocument: metrics.json typed, round-tripping what scoring writes byte for byte."""

from __future__ import annotations

import json

import pytest
from leaderboard_fakes import accuracy_answerer, make_run, pope_samples, save_split

from deem_eval.run.catalog import discover
from deem_eval.scoring.metrics import METRICS_FORMAT, Estimate, MetricsDocument


def test_round_trip_of_a_scored_run_is_identical(tmp_path):
    split = save_split(tmp_path / "p", "pope-t", "pope", pope_samples(4))
    run = make_run(tmp_path / "runs", split, "m", accuracy_answerer("m", 0.8), answer_only=10)
    raw = (run / "metrics.json").read_text(encoding="utf-8")
    obj = json.loads(raw)
    doc = MetricsDocument.from_json(obj)
    assert doc.to_json() == obj and list(doc.to_json()) == list(obj)
    assert json.dumps(doc.to_json(), indent=2) == json.dumps(obj, indent=2)
    assert "format" not in obj and doc.format == METRICS_FORMAT == 1      # unversioned: format 1
    assert doc.parser == "strict" and doc.n_answered == 10 and not doc.complete and doc.run["benchmark"] == "pope"
    assert doc.estimate("accuracy") == Estimate.from_json(obj["overall"]["accuracy"])
    first = next(iter(obj["groups"]["subset"]))
    assert doc.estimate("f1", "subset", first) == Estimate.from_json(obj["groups"]["subset"][first]["f1"])
    assert doc.estimate("f1", "subset", "nope") is None and doc.group_values("subset") == list(obj["groups"]["subset"])
    (info,), _ = discover([tmp_path / "runs"])
    assert info.document == doc and info.document is info.document         # read once per RunInfo


def test_unknown_keys_kept_and_newer_formats_refused():
    obj = {"parser": "strict", "n_selected": 2, "n_answered": 2, "n_failed": 0, "n_missing": 0, "complete": True,
           "overall": {}, "groups": {}, "answers_file": {"path": "a.jsonl"}}
    assert MetricsDocument.from_json(obj).to_json() == obj
    assert MetricsDocument.from_json({**obj, "format": 1}).format == 1
    with pytest.raises(ValueError, match="newer"):
        MetricsDocument.from_json({**obj, "format": METRICS_FORMAT + 1})
