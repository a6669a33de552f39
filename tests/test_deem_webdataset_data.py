"""webdataset tar shards as a caption data source for CSR training (model_adapters/deem/training/data.py)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from deem_eval.core.errors import DeemEvalError

pytest.importorskip("webdataset")


def _image_bytes(fmt: str, colour: tuple[int, int, int], size: int = 24) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, fmt)
    return buf.getvalue()


def _shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shards(tmp_path):
    root = tmp_path / "shards"
    root.mkdir()
    _shard(root / "000000.tar", [
        ("k0.jpg", _image_bytes("JPEG", (200, 10, 10))), ("k0.txt", b"  a red square \n"),
        ("k1.png", _image_bytes("PNG", (10, 200, 10))), ("k1.json", json.dumps({"caption": "green"}).encode()),
        ("k2.txt", b"a caption without an image"),
    ])
    good_jpeg = _image_bytes("JPEG", (1, 2, 3))
    _shard(root / "000001.tar", [
        ("sub/k3.webp", _image_bytes("WEBP", (10, 10, 200))), ("sub/k3.txt", b"blue"),
        ("k4.jpg", good_jpeg[: len(good_jpeg) // 3]), ("k4.txt", b"a corrupt image"),
        ("k5.PNG", _image_bytes("PNG", (50, 50, 50))),
        ("k6.png", _image_bytes("PNG", (9, 9, 9))), ("k6.txt", b"\xff\xfe not utf-8"),
    ])
    return root


def test_shards_are_indexed_and_decoded_lazily(shards):
    from deem_eval.model_adapters.deem.model.images import UnreadableImage, open_rgb
    from deem_eval.model_adapters.deem.training.data import AlignData, ShardData, webdataset_data

    data = webdataset_data(str(shards / "{000000..000001}.tar"))
    assert isinstance(data, AlignData) and isinstance(data, ShardData)
    assert data.keys == ("k0", "k1", "sub/k3", "k4", "k5", "k6") and len(data) == 6
    assert data.without_image == 1 and data.captioned == 5 and data.failed == {}    # nothing decoded yet
    assert [data[i].name for i in range(len(data))] == list(data.keys)
    assert data.source.startswith("webdataset ")

    first = data[0]
    assert first.caption == "a red square" and first.image.size == (24, 24) and first.image.mode == "RGB"
    assert data[1].caption == "green" and data[1].image.getpixel((5, 5)) == (10, 200, 10)
    assert data[2].caption == "blue" and open_rgb(data[2].image).size == (24, 24)
    assert data[4].caption is None and data[4].image.size == (24, 24)

    corrupt = data[3]                           # a per-sample failure, not an exception
    assert isinstance(corrupt.image, UnreadableImage) and corrupt.name == "k4"
    with pytest.raises(DeemEvalError, match=r"000001.tar:k4.jpg: cannot read image"):
        open_rgb(corrupt.image)
    assert isinstance(data[5].image, UnreadableImage)       # its caption is not UTF-8
    assert set(data.failed) == {"k4", "k6"}
    assert data.failed["k6"].endswith("000001.tar:k6.txt: unreadable caption ('utf-8' codec can't decode byte "
                                      "0xff in position 0: invalid start byte)")
    assert "000001.tar:k4.jpg: cannot read image" in data.failed["k4"]
    data[3]
    assert len(data.failed) == 2                # listed once per key however often it is drawn


def test_the_training_loop_skips_unreadable_members(shards):
    from deem_eval.model_adapters.deem.training.align import _load_example
    from deem_eval.model_adapters.deem.training.data import webdataset_data

    data = webdataset_data(str(shards / "000001.tar"))
    loaded = [_load_example(data[i]) for i in range(len(data))]
    assert [img is None for img in loaded] == [False, True, False, True]


def test_url_forms(shards):
    from deem_eval.model_adapters.deem.training.data import webdataset_data

    assert len(webdataset_data(f"file://{shards}/000000.tar")) == 2
    assert len(webdataset_data(f"{shards}/000000.tar::{shards}/000001.tar")) == 6


def test_bad_shards_are_errors_naming_them(shards, tmp_path):
    from deem_eval.model_adapters.deem.training.data import webdataset_data

    with pytest.raises(DeemEvalError, match=r"000002.tar: shard file not found"):
        webdataset_data(str(shards / "{000000..000002}.tar"))
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar file" * 40)
    with pytest.raises(DeemEvalError, match=r"junk.tar: not a readable uncompressed tar shard"):
        webdataset_data(str(tmp_path / "junk.tar"))
    with pytest.raises(DeemEvalError, match="only local shard files"):
        webdataset_data("https://example.org/shards/{0..3}.tar")
    _shard(tmp_path / "captions.tar", [("a.txt", b"x"), ("b.json", b"{}")])
    with pytest.raises(DeemEvalError, match="no samples with an image member"):
        webdataset_data(str(tmp_path / "captions.tar"))


def test_a_shard_changed_after_indexing_is_a_per_sample_failure(shards):
    from deem_eval.model_adapters.deem.model.images import UnreadableImage
    from deem_eval.model_adapters.deem.training.data import webdataset_data

    data = webdataset_data(str(shards / "000000.tar"))
    (shards / "000000.tar").write_bytes(b"")
    assert isinstance(data[1].image, UnreadableImage)
    assert data.failed["k1"].endswith("000000.tar:k1.json: member is cut short (0 of 20 bytes; was the shard "
                                      "changed after it was indexed?)")
