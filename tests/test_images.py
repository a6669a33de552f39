"""Images that cannot hurt a run: decompression bombs and any loader error fail one sample; 16-bit and float
images are scaled to 8 bits, the same way in the runner, the adapters and the corruption pipeline."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_split
from PIL import Image

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.images import load_rgb, to_rgb, wide_to_uint8
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import STRICT


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels (PIL refuses > 2 x MAX_IMAGE_PIXELS)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096, 9)        # far too little data: only the header matters
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


class RedEcho(ModelAdapter):
    """Needs images; answers yes iff the first pixel is red-ish."""

    name = label = "red-echo"
    needs_images = True

    def __init__(self):
        from deem_eval.core.benchmark import NoOptions

        self.config = NoOptions()

    def generate(self, batch):
        return ["Yes." if r.image.getpixel((0, 0))[0] > 100 else "No." for r in batch]


def _opts(tmp_path: Path) -> RunOptions:
    return RunOptions(out=tmp_path / "runs", progress=False, batch_size=4)


def test_a_decompression_bomb_is_a_deem_eval_error(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert len(path.read_bytes()) < 200
    with pytest.raises(DeemEvalError, match=r"bomb.png: image too large to decode"):
        load_rgb(path)


def test_a_decompression_bomb_fails_its_samples_and_the_run_goes_on_and_resumes(tmp_path):
    split = make_split(tmp_path / "split", n_images=4)
    (split.directory / "images" / "img002.png").write_bytes(bomb_png())
    first = run(RedEcho(), split, STRICT, _opts(tmp_path))
    assert first.metrics["n_answered"] == 6 and first.metrics["n_failed"] == 2
    failures = [json.loads(line) for line in (first.run_dir / "failures.jsonl").read_text().splitlines()]
    assert {f["id"] for f in failures} == {"tiny/002/yes", "tiny/002/no"}
    assert all(f["stage"] == "image" and "too large" in f["error"] for f in failures)
    again = run(RedEcho(), split, STRICT, _opts(tmp_path))           # the resume retries, fails again, ends
    assert again.run_dir == first.run_dir and again.resumed_from == 6 and again.metrics["n_failed"] == 2


def test_any_exception_while_preparing_a_sample_is_a_per_sample_failure(tmp_path, monkeypatch):
    from deem_eval.run import runner

    split = make_split(tmp_path / "split", n_images=3)
    real = runner.load_rgb

    def flaky(path):
        if Path(path).name == "img001.png":
            raise MemoryError("out of memory decoding")
        return real(path)

    monkeypatch.setattr(runner, "load_rgb", flaky)
    m = run(RedEcho(), split, STRICT, _opts(tmp_path)).metrics
    assert m["n_answered"] == 4 and m["n_failed"] == 2
    assert all(f["stage"] == "image" and "MemoryError: out of memory" in f["error"] for f in m["failures"])


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 65535, 33024], [33025, 128, 129, 1000]], dtype=np.uint16)
    expected = np.array([[0, 1, 255, 128], [129, 0, 1, 4]], dtype=np.uint8)   # round(v / 257)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    assert np.array_equal(np.asarray(load_rgb(image))[..., 0], expected)
    path = tmp_path / "sixteen.png"
    image.save(path)
    loaded = np.asarray(load_rgb(path))                                  # PIL opens it as I;16 or I
    assert loaded.shape == (2, 4, 3) and np.array_equal(loaded[..., 1], expected)
    big_endian = Image.fromarray(values.astype(">u2"))
    assert big_endian.mode.startswith("I;16")
    assert np.array_equal(np.asarray(load_rgb(big_endian))[..., 2], expected)


def test_mode_I_is_read_as_16_bit_and_fails_outside_that_range():
    inside = Image.fromarray(np.array([[0, 65535], [257, 514]], dtype=np.int32))
    assert inside.mode == "I"
    assert np.array_equal(np.asarray(load_rgb(inside))[..., 0], [[0, 255], [1, 2]])
    for bad in (70000, -1):
        with pytest.raises(DeemEvalError, match="outside the 16-bit range"):
            load_rgb(Image.fromarray(np.array([[0, bad]], dtype=np.int32)))


def test_mode_I_out_of_range_file_fails_naming_it(tmp_path):
    path = tmp_path / "wide.tif"
    Image.fromarray(np.array([[0, 100000]], dtype=np.int32)).save(path)
    with pytest.raises(DeemEvalError, match=r"wide.tif: cannot read image .*outside the 16-bit range"):
        load_rgb(path)


def test_float_images_are_read_as_unit_or_byte_range():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32))
    assert unit.mode == "F"
    assert list(np.asarray(load_rgb(unit))[0, :, 0]) == [0, 128, 255, 0]
    byte = Image.fromarray(np.array([[0.0, 2.0, 254.6, 300.0]], dtype=np.float32))
    assert list(np.asarray(load_rgb(byte))[0, :, 0]) == [0, 2, 255, 255]        # > 255 is clipped


def test_ordinary_modes_still_convert_like_pil():
    rgba = Image.new("RGBA", (3, 2), (10, 20, 30, 0))
    assert np.array_equal(np.asarray(to_rgb(rgba)), np.asarray(rgba.convert("RGB")))
    grey = Image.new("L", (3, 2), 77)
    assert np.array_equal(np.asarray(load_rgb(grey)), np.full((2, 3, 3), 77))
    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    assert load_rgb(rgb) is not rgb                                   # always a new image


def test_corruptions_read_wide_images_with_the_same_converter(tmp_path):
    from deem_eval.benchmarks.corruptions.images import load_rgb as corruption_load
    from deem_eval.benchmarks.corruptions.images import to_rgb_uint8

    values = (np.arange(40 * 40, dtype=np.uint32).reshape(40, 40) * 40).astype(np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    assert np.array_equal(corruption_load(path), np.asarray(load_rgb(path)))
    unit = np.linspace(0, 1, 40 * 40, dtype=np.float32).reshape(40, 40)
    assert np.array_equal(to_rgb_uint8(Image.fromarray(unit)), to_rgb_uint8(unit))
    assert np.array_equal(to_rgb_uint8(unit)[..., 0], wide_to_uint8(unit, "F"))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    with pytest.raises(DeemEvalError, match="too large"):
        corruption_load(bomb)


@pytest.mark.parametrize("adapter", ["hf", "clip"])
def test_adapters_open_path_images_with_the_shared_opener(tmp_path, adapter):
    """Both adapters once imported a `load_image` that no longer existed: any path image raised ImportError."""
    if adapter == "hf":
        from deem_eval.model_adapters.hf.adapter import HFAdapter as cls
    else:
        from deem_eval.model_adapters.clip_zeroshot import CLIPZeroShot as cls
    path = tmp_path / "sixteen.png"
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(path)
    for image in (path, str(path), Image.open(path)):
        opened = cls._image(Request("x", image, "q", "dog", ("dog",)))
        assert opened.mode == "RGB" and opened.getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(DeemEvalError, match="image file not found"):
        cls._image(Request("x", tmp_path / "missing.png", "q", "dog", ("dog",)))
