"""Split loading: the one-call fast path gives what the line-by-line reader gives, and falls back to it
(with its file:line errors) on anything unusual."""

import copy
import gc
import json
import pickle

import pytest

from deem_eval.core.errors import SplitFormatError
from deem_eval.core.splits import (
    BuilderInfo,
    Sample,
    Split,
    _parse_samples_fast,
    _read_samples_lines,
    canonical_line,
    fingerprint_samples,
    read_samples,
)


def _varied() -> list[Sample]:
    groups = [{"subset": "random"}, {"subset": "random"}, {"severity": 1}, {"severity": 1.0}, {"severity": True},
              {"x": 0.0}, {"x": -0.0}, {}, {"a": "b", "n": 3}, {"u": "caf\u00e9 \u2028 line"}, {"f": 1e300}]
    return [Sample(f"s/{i:03d}", f"img{i % 3}.png", f"Is there a thing {i % 2}?\u2029", ("yes", "no")[i % 2],
                   groups[i % len(groups)]) for i in range(40)]


def _write(tmp_path, text: str):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(text.encode("utf-8"))
    return path


def _slow(path):
    return list(_read_samples_lines(path.read_bytes(), path))


def test_fast_path_loads_the_same_values_and_fingerprint(tmp_path):
    split = Split.create(name="s", benchmark="b", samples=_varied(), image_root=".", builder=BuilderInfo("t"))
    split.save(tmp_path)
    path = tmp_path / "samples.jsonl"
    fast = _parse_samples_fast(path.read_bytes())
    assert fast is not None
    assert fast == _slow(path) == list(split.samples)
    # same values down to the types: True, 1 and 1.0, and 0.0 and -0.0, stay apart when groups are shared
    assert [canonical_line(s) for s in fast] == [canonical_line(s) for s in split.samples]
    assert [[type(v) for v in s.group.values()] for s in fast] == \
        [[type(v) for v in s.group.values()] for s in split.samples]
    loaded = Split.load(tmp_path)
    assert loaded.samples == split.samples and loaded.fingerprint == fingerprint_samples(loaded.samples)


def test_fast_path_shares_equal_strings_and_groups(tmp_path):
    Split.create(name="s", benchmark="b", samples=_varied(), image_root=".", builder=BuilderInfo("t")).save(tmp_path)
    samples = Split.load(tmp_path).samples
    random = [s.group for s in samples if s.group == {"subset": "random"}]
    assert len(random) > 2 and all(g is random[0] for g in random)
    assert len({id(s.image) for s in samples}) == 3
    assert len({id(s.question) for s in samples}) == 2


@pytest.mark.parametrize("text", [
    "",                                                    # empty file
    "\n",                                                  # a blank line only
    ('{"id":"a","image":"i","question":"q","answer":"yes"}\n\n'
     '{"id":"b","image":"i","question":"q","answer":"no"}\n'),        # blank line in the middle
    ('{"id":"a","image":"i","question":"q","answer":"yes"}\r\n'
     '{"id":"b","image":"i","question":"q","answer":"no","group":{}}'),  # CRLF, no final newline
    '  {"id":"a","image":"i","question":"q","answer":"yes"}  \n \t \n',  # whitespace around and alone
])
def test_unusual_but_valid_files_match_the_line_reader(tmp_path, text):
    path = _write(tmp_path, text)
    assert list(read_samples(path)) == _slow(path)


@pytest.mark.parametrize("text, message", [
    ('{"id":"a","image":"i","question":"q","answer":"yes"},{"id":"b","image":"i","question":"q","answer":"no"}\n',
     r"samples.jsonl:1: malformed JSON"),                              # two values on one line
    ('{"id":"a","image":"i","question":"q","answer":"yes"}\n{"id":"b","image":"i",\n"question":"q","answer":"no"}\n',
     r"samples.jsonl:2: malformed JSON"),                              # one value over two lines
    ('{"id":"a","image":"i","question":"q","answer":"yes"}\n[1]\n', r"samples.jsonl:2: expected a JSON object"),
    ('{"id":"a","image":"i","question":"q","answer":"yes"}\n{"id":"b","image":"i","question":"q","answer":"maybe"}',
     r"samples.jsonl:2: answer must be 'yes' or 'no'"),
    ('{"id":"a","image":"i","question":"q","answer":["yes"]}', r"samples.jsonl:1: field 'answer' must be a string"),
    ('\n{"id":"a","image":"i","question":"q"}', r"samples.jsonl:2: missing field\(s\) answer"),
    ('{"id":1,"image":"i","question":"q","answer":"yes"}', r"samples.jsonl:1: field 'id' must be a string"),
    ('{"id":"a","image":"i","question":"q","answer":"yes","group":null}', r"samples.jsonl:1: 'group' must be"),
    ('{"id":"a","image":"i","question":"q","answer":"yes","group":{"k":[1]}}', r"samples.jsonl:1: 'group' must be"),
    ('{"id":"a","image":"i","question":"q","answer":"yes","group":{"k":null}}', r"samples.jsonl:1: 'group' must be"),
    ('{"id":"a","image":"i","question":"q","answer":"yes","group":[]}', r"samples.jsonl:1: 'group' must be"),
    ('1\n', r"samples.jsonl:1: expected a JSON object"),
])
def test_errors_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    assert _parse_samples_fast(path.read_bytes()) is None
    with pytest.raises(SplitFormatError, match=message):
        read_samples(path)


def test_bad_utf8_names_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"id":"a","image":"i","question":"q","answer":"yes"}\n{"id":"b\xff"}\n')
    with pytest.raises(SplitFormatError, match=r"samples.jsonl:2: not valid UTF-8"):
        read_samples(path)


def test_gc_state_is_restored(tmp_path):
    path = _write(tmp_path, '{"id":"a","image":"i","question":"q","answer":"yes"}\n')
    assert gc.isenabled()
    read_samples(path)
    assert gc.isenabled()
    _write(tmp_path, "{broken\n")
    with pytest.raises(SplitFormatError):
        read_samples(path)
    assert gc.isenabled()
    gc.disable()
    try:
        read_samples(_write(tmp_path, '{"id":"a","image":"i","question":"q","answer":"yes"}\n'))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_slotted_sample_copies_and_pickles():
    sample = Sample("a", "i.png", "q?", "yes", {"subset": "x", "severity": 2})
    assert not hasattr(sample, "__dict__")
    for copied in (pickle.loads(pickle.dumps(sample)), copy.deepcopy(sample), copy.copy(sample)):
        assert copied == sample
    with pytest.raises(AttributeError):
        sample.id = "b"  # type: ignore[misc]


def test_large_generated_file_matches_line_reader(tmp_path):
    samples = [Sample(f"g/{i:06d}", f"img{i // 6}.jpg", f"Is there a {('cat', 'dog', 'car')[i % 3]} in the image?",
                      ("yes", "no")[i % 2], {"subset": ("random", "popular", "adversarial")[i % 3], "k": i % 7})
               for i in range(3000)]
    path = _write(tmp_path, "".join(json.dumps(s.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
                                    for s in samples))
    fast = _parse_samples_fast(path.read_bytes())
    assert fast is not None and fast == _slow(path) == samples


# --- the strict parser's fast path (scoring speed, issue 17 item 5): same verdicts as the full rule ---------

def _generated_answers(n: int, seed: int = 0) -> list[str]:
    """Answers built to hit the fast path's edges: leads glued to letters, digits and apostrophes, every word
    the rule reacts to, contrasts, punctuation, case and curly quotes."""
    import random

    from deem_eval.scoring.strict_rule import _NEGATIONS, _NO_CHANGERS, _NON_ANSWER_WORDS, _YES_CHANGERS

    rng = random.Random(seed)
    leads = ["yes", "no", "Yes", "NO", "yeah", "nope", "yess", "noo", "none", "not", "yes'", "no'", "yes_", "no_",
             "yes3", "no3", "yesé", "noé", "well, yes", "oh no", "", " yes", "no-", "yes-", "nah", "yep"]
    seps = [" ", ", ", ". ", "! ", "; ", ": ", "? ", "-", "\n", "\t", "", "'", "\u2019", "_", "3", ",", "...", " - "]
    changers = {w.decode() for w in _YES_CHANGERS | _NO_CHANGERS}
    vocab = sorted(_NEGATIONS | _NON_ANSWER_WORDS | changers | {
        "there", "is", "a", "cat", "dog", "in", "the", "image", "but", "however", "although", "though", "whereas",
        "yet", "except", "instead", "rather", "so", "i", "don't", "do", "isn't", "can't", "there's", "it's", "see",
        "visible", "present", "shows", "has", "and", "or", "on", "second", "thought", "fact", "of", "course",
        "certainly", "sure", "object", "th", "1st", "2-th", "no'but", "x'no", "yes'x", "nobody's", "n't", "n",
        "t", "'", "\u2019", "doubt", "about", "it", "that", "think", "believe", "not", "nothing", "none", "tell",
        "determine", "say", "confirm", "picture", "photo", "access", "to", "be", "determined", "way", "idea"})
    punct = ["", "", "", ",", ".", "!", "?", ";", ":", "\n", " -", "'", "\u2019"]
    out = []
    for _ in range(n):
        words = [rng.choice(vocab) + rng.choice(punct) for _ in range(rng.randrange(0, 9))]
        text = rng.choice(leads) + rng.choice(seps) + " ".join(words)
        if rng.random() < 0.2:
            text = text.upper()
        elif rng.random() < 0.2:
            text = text.capitalize()
        out.append(text)
    return out


def test_fast_path_agrees_with_the_full_rule_on_the_labelled_answers():
    from deem_eval.scoring.strict_rule import _strict_parse_full, strict_parse

    path = __import__("pathlib").Path(__file__).parent / "data" / "strict_parser_answers.tsv"
    answers = [line.split("\t")[1].replace("\\n", "\n") for line in path.read_text(encoding="utf-8").split("\n")[1:]
               if line]
    assert len(answers) > 400
    assert [strict_parse(a) for a in answers] == [_strict_parse_full(a) for a in answers]


def test_fast_path_agrees_with_the_full_rule_on_generated_answers():
    from deem_eval.scoring.strict_rule import _fast_verdict, _letter_runs, _normalise, _strict_parse_full, strict_parse

    answers = _generated_answers(60_000)
    fast_hits = sum(_fast_verdict(t, _letter_runs(t)) is not None
                    for t in map(_normalise, answers) if t.isascii())
    assert fast_hits > 5_000                    # the generator does reach the fast path
    mismatches = [(a, strict_parse(a), _strict_parse_full(a)) for a in answers
                  if strict_parse(a) != _strict_parse_full(a)]
    assert not mismatches[:20]


def test_fast_path_agrees_on_benchmark_style_answers():
    from deem_eval.scoring.strict_rule import _strict_parse_full, strict_parse

    templates = ["Yes, there is a {i}-th object.", "No, there is no {i}-th object.", "Yes. I see {i} cats.",
                 "No. The image shows {i} dogs.", "yes, {i} of them", "No; object {i} is absent.",
                 "Yes, but object {i} is not there.", "No, actually there are {i}.", "There are {i} cats.",
                 "Yes, object {i} isn't a dog.", "No, but I think so {i}."]
    answers = [t.format(i=i) for i in range(300) for t in templates]
    assert [strict_parse(a) for a in answers] == [_strict_parse_full(a) for a in answers]


def test_batch_parsing_agrees_with_one_at_a_time():
    from deem_eval.scoring.parsing import STRICT, strict_parse
    from deem_eval.scoring.strict_batch import strict_parse_batch

    answers = _generated_answers(20_000, seed=3) + ["Yes", "  NO.  ", "", "\x1f yes \x1f", "No\u2019t", "Yés, cat"]
    expected = [strict_parse(a) for a in answers]
    assert strict_parse_batch(answers) == expected                          # non-ASCII: the per-text path
    ascii_only = [a for a in answers if a.isascii()]
    assert strict_parse_batch(ascii_only) == [strict_parse(a) for a in ascii_only]   # the batch path
    assert strict_parse_batch(["yes", "no\x00yes", "No"]) == ["yes", strict_parse("no\x00yes"), "no"]  # a NUL
    assert strict_parse_batch([]) == []
    with_none = [None, *answers[:50], None, "Yes."]
    assert STRICT.parse_many(with_none) == ["unknown" if a is None else strict_parse(a) for a in with_none]


def test_chunked_parsing_matches_and_still_checks_every_line(tmp_path, monkeypatch):
    from deem_eval.core import splits

    monkeypatch.setattr(splits, "_CHUNK_BYTES", 150)      # a chunk every line or two
    samples = _varied()
    text = "".join(canonical_line(s) for s in samples)
    path = _write(tmp_path, text)
    assert _parse_samples_fast(path.read_bytes()) == samples == _slow(path)
    lines = text.split("\n")
    lines[30] = lines[30] + "," + lines[30]                # two values on one line, deep in the file
    path = _write(tmp_path, "\n".join(lines))
    assert _parse_samples_fast(path.read_bytes()) is None
    with pytest.raises(SplitFormatError, match=r"samples.jsonl:31: malformed JSON"):
        read_samples(path)


def test_samples_built_by_the_fast_loader_equal_constructed_ones():
    from deem_eval.core.splits import Sample, _new_sample

    group = {"subset": "random", "level": 3}
    made, built = Sample("a/1", "x.jpg", "Is there a cat?", "yes", group), _new_sample("a/1", "x.jpg",
                                                                                     "Is there a cat?", "yes", group)
    assert type(built) is Sample and built == made and repr(built) == repr(made)
    assert [getattr(built, f) for f in Sample.__slots__] == [getattr(made, f) for f in Sample.__slots__]
    frozen = _new_sample("a/2", "y.jpg", "q", "no", ())   # type: ignore[arg-type]
    assert hash(frozen) == hash(Sample("a/2", "y.jpg", "q", "no", ()))   # type: ignore[arg-type]
    with __import__("pytest").raises(AttributeError):
        built.id = "changed"   # type: ignore[misc]
