from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from deem_eval.core.errors import DeemEvalError, UnknownNameError
from deem_eval.core.options import parse_options, split_pairs
from deem_eval.core.registry import BENCHMARKS, MODELS, PARSERS


def test_entry_points_are_listed_without_import():
    assert {"always-yes", "always-no", "random", "replay"} <= set(MODELS.names())
    assert "synthscenes-yesno" in BENCHMARKS.names()
    assert "strict" in PARSERS.names()


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownNameError) as info:
        MODELS.get("alway-yes")
    assert "Did you mean 'always-yes'" in str(info.value)
    assert "Known models:" in str(info.value)


def test_runtime_registration():
    MODELS.register("test-only", object)
    try:
        assert MODELS.get("test-only") is object
        assert "test-only" in MODELS.names()
    finally:
        MODELS.unregister("test-only")


@dataclass(frozen=True)
class _Config:
    path: Path = Path(".")
    dtype: Literal["float32", "bfloat16"] = "float32"
    max_new_tokens: int = 10
    temperature: float = 0.0
    sample: bool = False
    device: str | None = None
    labels: tuple[str, ...] = ()


def test_parse_options_converts_types():
    cfg = parse_options(_Config, split_pairs(["path=~/m", "dtype=bfloat16", "max-new-tokens=5", "temperature=0.5",
                                              "sample=true", "device=none", "labels=a, b"]), what="model 'x'")
    assert cfg.path == Path("~/m").expanduser()
    assert (cfg.dtype, cfg.max_new_tokens, cfg.temperature, cfg.sample, cfg.device, cfg.labels) == \
        ("bfloat16", 5, 0.5, True, None, ("a", "b"))


def test_unknown_option_lists_valid_ones():
    with pytest.raises(DeemEvalError, match="has no option 'colour'. Valid options: device, dtype, labels"):
        parse_options(_Config, {"colour": "red"}, what="model 'x'")


@pytest.mark.parametrize("pair, message", [
    ("dtype=fp8", "expected one of float32, bfloat16"),
    ("max_new_tokens=ten", "expected an integer"),
    ("sample=perhaps", "expected true or false"),
])
def test_bad_values_are_explained(pair, message):
    with pytest.raises(DeemEvalError, match=message):
        parse_options(_Config, split_pairs([pair]), what="model 'x'")


def test_pair_without_equals():
    with pytest.raises(DeemEvalError, match="expected key=value"):
        split_pairs(["dtype"])
