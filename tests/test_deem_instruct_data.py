"""Stage-2 instruction data: LLaVA conversations, question lists, splits, and lazy image opening."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zlib
from pathlib import Path

import pytest

from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.deem.training.instruct_data import (
    SKIP_TEXT_ONLY,
    InstructData,
    InstructExample,
    Turn,
    instruct_data,
    llava_data,
    open_example_image,
    question_data,
    split_data,
    strip_marker,
)
from tests.conftest import make_split


def _conv(*texts: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(texts)]


def _write_array(path: Path, entries: list) -> Path:
    path.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return path


def _write_lines(path: Path, entries: list) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries), encoding="utf-8")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but holds (almost) no pixel data: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + _png_chunk(b"IEND", b""))


# ---- LLaVA conversations -----------------------------------------------------------------------------------

def test_llava_array_multi_turn_with_marker_removed(tmp_path):
    path = _write_array(tmp_path / "llava.json", [
        {"id": "a1", "image": "coco/1.jpg", "conversations": _conv("<image>\nWhat is this?", "A dog.",
                                                                   "What colour?", " Brown. ")},
        {"id": 7, "image": "2.jpg", "conversations": _conv("Describe it.\n<image>", "A cat.")},
        {"image": "/abs/3.jpg", "conversations": _conv("<image>", "A caption.")},
    ])
    data = llava_data(path)
    assert isinstance(data, InstructData) and len(data) == 3 and data.skipped == {} and data.turns == 4
    assert data[0] == InstructExample("a1", tmp_path / "coco/1.jpg",
                                      (Turn("What is this?", "A dog."), Turn("What colour?", "Brown.")))
    assert data[1].name == "7" and data[1].turns == (Turn("Describe it.", "A cat."),)
    assert data[2].image == Path("/abs/3.jpg") and data[2].turns[0].question == ""   # the image is the prompt
    assert data[2].name == f"{path}: item 3"
    assert data.source == str(path)


def test_llava_json_lines_and_image_folder(tmp_path):
    path = _write_lines(tmp_path / "llava.jsonl", [
        {"id": "x", "image": "p.jpg", "conversations": _conv("<image>\nQ?", "A.")}, "",
        {"id": "y", "image": "q.jpg", "conversations": _conv("Q2?\n<image>", "B.")}])
    data = llava_data(path, image_folder=tmp_path / "imgs")
    assert [e.image for e in data] == [tmp_path / "imgs/p.jpg", tmp_path / "imgs/q.jpg"]
    assert [e.turns[0] for e in data] == [Turn("Q?", "A."), Turn("Q2?", "B.")]


def test_text_only_conversations_are_skipped_and_counted(tmp_path):
    # a skipped text-only entry is not checked turn by turn (ShareGPT's turns do not always alternate)
    path = _write_array(tmp_path / "mix.json", [
        {"id": "t1", "conversations": _conv("Hi", "Hello")},
        {"id": "t2", "conversations": [{"from": "gpt", "value": "odd"}]},
        {"id": "i1", "image": "a.jpg", "conversations": _conv("<image>\nQ", "A")},
    ])
    data = llava_data(path)
    assert [e.name for e in data] == ["i1"] and data.skipped == {SKIP_TEXT_ONLY: 2}


def test_nothing_but_text_only_is_an_error(tmp_path):
    path = _write_array(tmp_path / "text.json", [{"conversations": _conv("Hi", "Hello")}])
    with pytest.raises(DeemEvalError, match="no usable examples.*text-only"):
        llava_data(path)


@pytest.mark.parametrize(("entry", "message"), [
    ([1, 2], "item 2: expected a JSON object, got list"),
    ({"id": "n", "image": "a.jpg"}, "item 2: missing \"conversations\""),
    ({"image": "a.jpg", "conversations": _conv("What is this?", "A dog.")},
     "item 2: the first human turn has no <image>"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nWhat?")}, "item 2: the conversation has no gpt answer"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nQ", "A", "Q2")}, "item 2: the last human turn .turn 3."),
    ({"image": "a.jpg", "conversations": [{"from": "gpt", "value": "A"}, {"from": "human", "value": "<image>"}]},
     "item 2: turn 1 is from 'gpt', expected 'human'"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nQ", "A") + [{"from": "gpt", "value": "B"}]},
     "item 2: turn 3 is from 'gpt', expected 'human'"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nQ", "   ")}, "item 2: turn 2 .gpt. has an empty answer"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nQ", "A", "", "B")}, "turn 3 .human. has an empty question"),
    ({"image": "a.jpg", "conversations": _conv("<image>\nQ", "A", "<image> again", "B")}, "more than one <image>"),
    ({"image": ["a.jpg", "b.jpg"], "conversations": _conv("<image>\nQ", "A")}, "must be one image path"),
    ({"image": "a.jpg", "conversations": [{"from": "human", "value": 3}]}, "turn 1 must be"),
    ({"image": "a.jpg", "conversations": []}, "non-empty list of turns"),
    ({"conversations": _conv("<image>\nQ", "A")}, "has an <image> marker but no \"image\""),
])
def test_llava_bad_entries_name_the_file_and_item(tmp_path, entry, message):
    good = {"id": "ok", "image": "ok.jpg", "conversations": _conv("<image>\nQ", "A")}
    path = _write_array(tmp_path / "bad.json", [good, entry])
    with pytest.raises(DeemEvalError, match=message) as err:
        llava_data(path)
    assert str(err.value).startswith(str(path))


def test_llava_json_lines_errors_name_the_line(tmp_path):
    good = json.dumps({"image": "ok.jpg", "conversations": _conv("<image>\nQ", "A")})
    path = _write_lines(tmp_path / "bad.jsonl", [good, "", good, '{"image": "x.jpg", "conversations": ['])
    with pytest.raises(DeemEvalError, match=rf"^{path}:4: malformed JSON"):
        llava_data(path)
    path = _write_lines(tmp_path / "bad2.jsonl", [good, '"just a string"'])
    with pytest.raises(DeemEvalError, match=rf"^{path}:2: expected a JSON object, got str"):
        llava_data(path)
    path = _write_lines(tmp_path / "bad3.jsonl", [good, json.dumps({"image": "a.jpg",
                                                                     "conversations": _conv("<image>", "")})])
    with pytest.raises(DeemEvalError, match=rf"^{path}:2: turn 2 \(gpt\) has an empty answer"):
        llava_data(path)


def test_missing_file_and_broken_array(tmp_path):
    with pytest.raises(DeemEvalError, match="no such instruction data file"):
        llava_data(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text('[{"image": "a.jpg",\n "conversations": [}]', encoding="utf-8")
    with pytest.raises(DeemEvalError, match=r"broken.json:2: malformed JSON"):
        llava_data(tmp_path / "broken.json")


def test_strip_marker_forms():
    assert strip_marker("<image>\nWhat is it?") == "What is it?"
    assert strip_marker("What is it?\n<image>") == "What is it?"
    assert strip_marker("<image> What is it?") == "What is it?"
    assert strip_marker("Line one\nline two") == "Line one\nline two"


# ---- question lists and splits -------------------------------------------------------------------------------

def test_question_list_yes_no_and_short_answers(tmp_path):
    path = _write_lines(tmp_path / "q.jsonl", [
        {"id": "q1", "image": "a.png", "question": "Is there a dog?", "answer": "yes"},
        {"image": "b.png", "question": "<image>\nWhat colour is the car?", "answer": "red"}])
    data = question_data(path, image_folder=tmp_path / "imgs")
    assert data[0] == InstructExample("q1", tmp_path / "imgs/a.png", (Turn("Is there a dog?", "yes"),))
    assert data[1].turns == (Turn("What colour is the car?", "red"),) and data[1].name == f"{path}:2"
    assert question_data(path)[0].image == tmp_path / "a.png"


@pytest.mark.parametrize(("entry", "message"), [
    ({"image": "a.png", "question": "Is it?"}, "missing 'answer'"),
    ({"question": "Is it?", "answer": "no"}, "missing 'image'"),
    ({"image": "a.png", "question": "Is it?", "answer": " "}, "empty answer"),
    ({"image": "a.png", "question": "Is it?", "answer": True}, "'answer' must be a string"),
    ({"image": "a.png", "question": "<image>", "answer": "no"}, "empty question"),
])
def test_question_list_errors_name_the_line(tmp_path, entry, message):
    path = _write_lines(tmp_path / "q.jsonl", [{"image": "a.png", "question": "Q?", "answer": "yes"}, entry])
    with pytest.raises(DeemEvalError, match=rf"^{path}:2: .*{message}"):
        question_data(path)


def test_split_directory(tmp_path):
    split = make_split(tmp_path / "split", n_images=2)
    data = split_data(tmp_path / "split")
    assert len(data) == len(split.samples) == 4
    first = split.samples[0]
    assert data[0] == InstructExample(first.id, tmp_path / "split/images" / first.image,
                                      (Turn(first.question, first.answer),))
    assert open_example_image(data[0]).size == (16, 16)


def test_instruct_data_tells_the_formats_apart(tmp_path):
    make_split(tmp_path / "split", n_images=1)
    assert len(instruct_data(tmp_path / "split")) == 2
    llava = _write_array(tmp_path / "l.json", [{"image": "a.jpg", "conversations": _conv("<image>\nQ", "A")}])
    assert instruct_data(llava, image_folder=tmp_path / "i")[0].image == tmp_path / "i/a.jpg"
    questions = _write_lines(tmp_path / "q.jsonl", [{"image": "a.png", "question": "Q?", "answer": "no"}])
    assert instruct_data(questions)[0].turns == (Turn("Q?", "no"),)
    other = _write_lines(tmp_path / "o.jsonl", [{"image": "a.png", "caption": "c"}])
    with pytest.raises(DeemEvalError, match="cannot tell the format"):
        instruct_data(other)
    with pytest.raises(DeemEvalError, match="own image_root"):
        instruct_data(tmp_path / "split", image_folder=tmp_path)


def test_dataset_is_immutable(tmp_path):
    path = _write_array(tmp_path / "mix.json", [{"conversations": _conv("Hi", "Hello")},
                                                {"image": "a.jpg", "conversations": _conv("<image>\nQ", "A")}])
    data = llava_data(path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data[0].name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        data[0].turns[0].answer = "B"  # type: ignore[misc]
    data.skipped[SKIP_TEXT_ONLY] = 99
    assert data.skipped == {SKIP_TEXT_ONLY: 1}
    assert isinstance(data[0].turns, tuple)


# ---- opening images -----------------------------------------------------------------------------------------

def _example(image) -> InstructExample:
    return InstructExample("e", image, (Turn("Q?", "A"),))


def test_open_example_image_good_and_unusable(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGBA", (20, 12), (1, 2, 3, 4)).save(good)
    img = open_example_image(_example(good))
    assert img.mode == "RGB" and img.size == (20, 12)
    assert open_example_image(_example(Image.new("L", (5, 5)))).mode == "RGB"

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"not an image at all")
    (tmp_path / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    for name in ("truncated.png", "truncated.jpg", "garbage.jpg", "bomb.png", "missing.png"):
        assert open_example_image(_example(tmp_path / name)) is None, name


def test_decompression_bomb_error_becomes_a_deem_eval_error(tmp_path):
    from deem_eval.model_adapters.deem.model.images import open_rgb

    (tmp_path / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    with pytest.raises(DeemEvalError, match=r"bomb.png: image too large to decode"):
        open_rgb(tmp_path / "bomb.png")
    with pytest.raises(DeemEvalError, match=r"shard.tar:k.png: image too large"):
        open_rgb(_png_header_only(30000, 30000), where="shard.tar:k.png")


def test_decompression_bomb_warning_refused_only_for_training(tmp_path, monkeypatch):
    """Between 1x and 2x MAX_IMAGE_PIXELS PIL only warns: inference still decodes, training data skips it."""
    from PIL import Image

    from deem_eval.model_adapters.deem.model.images import open_rgb

    Image.new("RGB", (12, 12), (9, 9, 9)).save(tmp_path / "big.png")       # 144 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.warns(Image.DecompressionBombWarning):
        assert open_rgb(tmp_path / "big.png").size == (12, 12)
    with pytest.raises(DeemEvalError, match="big.png: .*DecompressionBomb"):
        open_rgb(tmp_path / "big.png", refuse_large=True)
    with pytest.raises(DeemEvalError, match="member.png: image too large"):
        open_rgb((tmp_path / "big.png").read_bytes(), where="member.png", refuse_large=True)
    with pytest.warns(Image.DecompressionBombWarning):
        assert open_rgb((tmp_path / "big.png").read_bytes()).size == (12, 12)
    assert open_example_image(_example(tmp_path / "big.png")) is None
