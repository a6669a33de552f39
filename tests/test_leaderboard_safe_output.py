"""Leaderboard outputs carry hostile labels, split names and notes as text: nothing in them executes."""

from __future__ import annotations

import csv
import io
import re

import pytest
from leaderboard_fakes import accuracy_answerer, make_run, pope_samples, save_split, synth_samples

from deem_eval.views.display import strip_controls, terminal_text
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import csv_text, md_escape, to_csv, to_markdown, to_plain

SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x")'
OSC = "\x1b]8;;http://x\x07evil\x1b[31m"
IMG_SPLIT = "<img src=x onerror=alert(1)>"
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    pope = save_split(root / "pope", "pope-t", "pope", pope_samples(6))
    synth = save_split(root / "synth", IMG_SPLIT, "synthscenes-yesno", synth_samples(6))
    for i, label in enumerate((SCRIPT, FORMULA, OSC, "[link=http://x]rich[/link] *b* `c` a|b")):
        make_run(root / "runs", pope, label, accuracy_answerer(label, 0.6 + 0.1 * i), name=f"run{i}-pope")
        make_run(root / "runs", synth, label, accuracy_answerer(label, 0.6 + 0.1 * i), name=f"run{i}-synth",
                 answer_only=5 if i == 0 else None)          # incomplete: its label and split go into a note
    board = make_board([root / "runs"], reported="table1")
    board.notes.append(f"line one {SCRIPT}\nline two {OSC}")
    return board


def test_markdown_has_no_raw_html_or_markup(board):
    md = to_markdown(board)
    assert "<" not in md and ">" not in md                    # no <script>, no <img onerror>, no autolinks
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "\x1b" not in md and "\x07" not in md
    assert "\\[link=http://x\\]" in md and "\\*b\\*" in md and "\\`c\\`" in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
    assert len(widths) == 1                                    # an escaped | never splits a cell
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("- line one"))
    assert lines[start + 1].startswith("  line two")           # a multi-line note stays one list item


def test_csv_formula_cells_are_neutralised_and_numbers_stay_numbers(board):
    rows = list(csv.DictReader(io.StringIO(to_csv(board))))
    models = {r["model"] for r in rows}
    assert "'" + FORMULA in models and FORMULA not in models
    assert SCRIPT in models                                    # CSV is data: < > are fine, nothing runs
    assert not any(_CONTROL.search(m) for m in models)
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values() if cell)
    values = [r["POPE-R"] for r in rows if r["kind"] == "measured"]
    assert all(float(v) >= 0 for v in values)                 # still plain numbers
    assert csv_text("-0.5") == "-0.5" and csv_text("-1+1") == "'-1+1" and csv_text("@SUM(A1)") == "'@SUM(A1)"
    assert csv_text("\tx") == "'\tx" and csv_text("\rx") == "'\rx" and csv_text("ok") == "ok"


def test_terminal_table_passes_no_control_sequences(board):
    text = to_plain(board)
    assert not _CONTROL.search(text)                           # no ESC, BEL, OSC 8 hyperlink
    assert "evil" in text and "]8;;http://x" in text           # the label is shown, defanged
    assert "[link=http://x]rich[/link]" in text                # rich markup in a label is shown, not applied
    assert "line two" in text


def test_rich_terminal_output_has_only_rich_own_escapes(board):
    from rich.console import Console

    from deem_eval.views.leaderboard.render import print_terminal

    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system="truecolor")
    print_terminal(board, console)
    out = console.file.getvalue()
    assert "\x1b]8;" not in out and "\x07" not in out          # no hyperlink from the label or the [link] markup
    assert "xevil[31m" in out and "evil\x1b" not in out        # the label's own colour code is defanged


def test_helpers():
    assert strip_controls("a\x1b[2Jb\x9bc\u202ed\ne") == "a[2Jbcd e"
    assert strip_controls("a\nb", keep="\n") == "a\nb"
    assert terminal_text("[bold]x") == "\\[bold]x"
    assert md_escape("a_b & <i>") == "a\\_b &amp; &lt;i&gt;"
