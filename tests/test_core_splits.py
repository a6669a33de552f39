import json

import pytest
from conftest import make_split

from deem_eval.core.errors import SplitFormatError
from deem_eval.core.splits import BuilderInfo, Sample, Split, fingerprint_samples
from deem_eval.core.verify import verify_split


def _samples():
    return [Sample("s/2", "b.png", "Is there a dog in the image?", "no", {"subset": "x"}),
            Sample("s/1", "a.png", "Is there a cat in the image?", "yes", {"subset": "x", "severity": 0})]


def test_round_trip_and_sorting(tmp_path):
    split = Split.create(name="s", benchmark="b", samples=_samples(), image_root=".", builder=BuilderInfo("t"))
    assert [s.id for s in split.samples] == ["s/1", "s/2"]
    split.save(tmp_path)
    loaded = Split.load(tmp_path)
    assert loaded.samples == split.samples
    assert loaded.meta == split.meta
    assert loaded.fingerprint == fingerprint_samples(split.samples)


def test_fingerprint_is_order_independent_and_content_sensitive():
    a = Split.create(name="s", benchmark="b", samples=_samples(), image_root=".", builder=BuilderInfo("t"))
    b = Split.create(name="s", benchmark="b", samples=list(reversed(_samples())), image_root=".",
                     builder=BuilderInfo("t"))
    assert a.fingerprint == b.fingerprint
    changed = _samples()
    changed[0] = Sample("s/2", "b.png", "Is there a dog in the image?", "yes", {"subset": "x"})
    c = Split.create(name="s", benchmark="b", samples=changed, image_root=".", builder=BuilderInfo("t"))
    assert c.fingerprint != a.fingerprint
    # a known value guards the canonical format itself (changing it silently would orphan every result)
    assert a.fingerprint == fingerprint_samples(a.samples)
    line = '{"answer":"yes","group":{"severity":0,"subset":"x"},"id":"s/1","image":"a.png","question":"Is there a cat in the image?"}\n'
    import hashlib
    second = '{"answer":"no","group":{"subset":"x"},"id":"s/2","image":"b.png","question":"Is there a dog in the image?"}\n'
    assert a.fingerprint == hashlib.sha256((line + second).encode()).hexdigest()


def test_duplicate_ids_rejected():
    dup = _samples() + [_samples()[0]]
    with pytest.raises(SplitFormatError, match="duplicate sample id 's/2'"):
        Split.create(name="s", benchmark="b", samples=dup, image_root=".", builder=BuilderInfo("t"))


def test_bad_answer_rejected_with_file_and_line(tmp_path):
    Split.create(name="s", benchmark="b", samples=_samples(), image_root=".", builder=BuilderInfo("t")).save(tmp_path)
    path = tmp_path / "samples.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"answer":"no"', '"answer":"maybe"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SplitFormatError, match=r"samples.jsonl:2: answer must be 'yes' or 'no'"):
        Split.load(tmp_path)


def test_malformed_json_names_line(tmp_path):
    Split.create(name="s", benchmark="b", samples=_samples(), image_root=".", builder=BuilderInfo("t")).save(tmp_path)
    path = tmp_path / "samples.jsonl"
    path.write_text(path.read_text().splitlines()[0] + "\n{broken\n")
    with pytest.raises(SplitFormatError, match=r"samples.jsonl:2: malformed JSON"):
        Split.load(tmp_path)


def test_missing_files_named(tmp_path):
    with pytest.raises(SplitFormatError, match="does not exist"):
        Split.load(tmp_path / "nope")
    (tmp_path / "split.json").write_text("{}")
    with pytest.raises(SplitFormatError, match="samples.jsonl: missing"):
        Split.load(tmp_path)


def test_edited_split_is_detected(tmp_path):
    make_split(tmp_path / "s")
    path = tmp_path / "s" / "samples.jsonl"
    path.write_text(path.read_text().replace("circle", "triangle"))
    with pytest.raises(SplitFormatError, match="modified after it was built"):
        Split.load(tmp_path / "s")
    report = verify_split(tmp_path / "s")
    assert not report.ok
    assert any("samples.jsonl sha256" in p for p in report.problems)


def test_verify_reports_changed_and_missing_images(tmp_path):
    make_split(tmp_path / "s", n_images=3)
    assert verify_split(tmp_path / "s").ok
    (tmp_path / "s" / "images" / "img001.png").write_bytes(b"changed")
    (tmp_path / "s" / "images" / "img002.png").unlink()
    report = verify_split(tmp_path / "s")
    assert not report.ok
    text = "\n".join(report.problems)
    assert "images/img001.png: content changed" in text
    assert "images/img002.png: missing" in text


def test_count_mismatch(tmp_path):
    split = make_split(tmp_path / "s", n_images=2)
    meta = json.loads((tmp_path / "s" / "split.json").read_text())
    meta["count"] = 99
    (tmp_path / "s" / "split.json").write_text(json.dumps(meta))
    with pytest.raises(SplitFormatError, match="4 samples but split.json says 99"):
        Split.load(tmp_path / "s")
    assert split.meta.count == 4
