"""results/reported: every table loads, carries its source, and its numbers are internally consistent."""

from __future__ import annotations

import csv

import pytest

from deem_eval.core.errors import DeemEvalError
from deem_eval.views.leaderboard.reported import default_dir, load_index, load_table, table_ids

PAPER_COLUMNS = ("rvqa_a", "rvqa_r", "rvqa_v", "pope_r", "pope_p", "pope_a")
# Rows whose printed AVG is not the mean of their printed columns (recorded as printed; see index.json)
KNOWN_AVG_MISMATCHES = {("table1", "DreamLLM"), ("table1", "DEEM-VQA")}


def test_index_lists_existing_tables_with_sources():
    index = load_index()
    assert index["paper"]["arxiv"] == "2405.15232"
    assert table_ids() == ["table1", "table1-arxiv2024", "table3", "table4", "table5"]
    for entry in index["tables"]:
        assert (default_dir() / entry["file"]).is_file()
        assert entry["table"] in (1, 3, 4, 5) and entry["version"] and entry["caption"]
        assert "page" in entry                       # null: not verified, see page_note
    assert index["page_note"]


@pytest.mark.parametrize("table_id", ["table1", "table1-arxiv2024", "table3", "table4", "table5"])
def test_tables_parse_with_percentages(table_id):
    table = load_table(table_id)
    assert table.rows
    for row in table.rows:
        for col in PAPER_COLUMNS:
            value = row.values.get(col)
            assert value is None or 0.0 <= value <= 100.0
        assert any(row.values.get(c) is not None for c in PAPER_COLUMNS)
        assert set(row.texts) == {c for c, v in row.values.items() if v is not None}


def test_printed_averages_match_their_rows():
    """AVG = mean over the row's numeric benchmark columns (Table 1 v4 includes MMVP), to within
    the paper's rounding/truncation (0.02), except the rows documented in index.json."""
    for table_id, extra in (("table1", ("mmvp",)), ("table1-arxiv2024", ())):
        path = default_dir() / {"table1": "deem_table1.csv", "table1-arxiv2024": "deem_table1_arxiv2024.csv"}[table_id]
        mismatches = set()
        with open(path, encoding="utf-8") as handle:
            for rec in csv.DictReader(handle):
                values = [float(rec[c]) for c in PAPER_COLUMNS + extra if rec[c]]
                if abs(sum(values) / len(values) - float(rec["avg"])) > 0.02:
                    mismatches.add((table_id, rec["row"]))
        assert mismatches == {m for m in KNOWN_AVG_MISMATCHES if m[0] == table_id}


def test_key_numbers_and_cross_table_consistency():
    t1 = {r.label: r for r in load_table("table1").rows}
    old = {r.label: r for r in load_table("table1-arxiv2024").rows}
    t5 = {r.label: r for r in load_table("table5").rows}
    assert t1["DEEM"].values == old["DEEM"].values            # the DEEM row is the same in both versions
    assert t1["MM-Interleaved"].values == old["MM-Interleaved"].values
    assert t1["DEEM"].texts["pope_a"] == "68.87" and t1["DEEM"].paper_average == 60.91
    for col in PAPER_COLUMNS:                                # Table 5 repeats DEEM at one decimal
        assert t5["DEEM with L_CSR"].values[col] == pytest.approx(t1["DEEM"].values[col], abs=0.051)
        assert t5["DEEM without L_CSR"].values[col] == pytest.approx(t1["DEEM* (no diffusion feedback)"].values[col],
                                                                    abs=0.051)
    assert old["CLIP RN18"].values["pope_r"] is None          # CLIP has no POPE numbers
    assert load_table("table3").rows[0].extra["speed"] == "8.11 s/step"


def test_unknown_table_suggests_a_name():
    with pytest.raises(DeemEvalError, match="table5"):
        load_table("tabel5")
