"""deem_eval.model_adapters.generation: yes/no token discovery, P(yes) from logits, length grouping, OOM backoff."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.generation import (
    OomBackoff,
    YesNoTokens,
    find_yes_no_tokens,
    is_out_of_memory,
    length_grouped_batches,
    ordered_by_length,
    restore_order,
    yes_no_mass,
    yes_probability_from_logits,
)
from tests.hf_tiny import single_torch_thread, train_tiny_tokenizer  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(["<pad>", "<s>", "</s>"], bos="<s>", eos="</s>", pad="<pad>")


def test_finds_every_single_token_casing_and_space_variant(tokenizer):
    tokens = find_yes_no_tokens(tokenizer)
    assert {"yes", "Yes", "YES", "\u0120yes", "\u0120Yes"} <= set(tokens.yes_tokens)
    assert {"no", "No", "NO", "\u0120no", "\u0120No"} <= set(tokens.no_tokens)
    for ids, word in ((tokens.yes_ids, "yes"), (tokens.no_ids, "no")):
        for i in ids:
            assert tokenizer.decode([i]).strip().lower() == word
    # what the model would actually emit after "ASSISTANT:" is covered
    assert tokenizer(" Yes", add_special_tokens=False).input_ids[0] in tokens.yes_ids
    # not the longer words that start with the same letters
    assert not any(t.lower().lstrip("\u0120") in {"not", "nose", "yesterday"} for t in tokens.no_tokens)


def test_refuses_tokenizer_without_single_token_yes():
    tok = train_tiny_tokenizer(["<pad>", "<s>", "</s>"], bos="<s>", eos="</s>", pad="<pad>", vocab_size=270,
                               corpus=["a photo of a cat", "the cat sat on the mat", "no more"])
    assert len(tok("yes", add_special_tokens=False).input_ids) > 1
    with pytest.raises(DeemEvalError, match=r"single-token spellings.*none for 'yes'.*scoring=generate"):
        find_yes_no_tokens(tok, what="the test model")


def test_continuation_pieces_are_not_yes(tokenizer):
    class WordPieceLike:
        all_special_ids: ClassVar[list[int]] = [0]

        def get_vocab(self):
            return {"[PAD]": 0, "##yes": 1, "yes": 2, "no": 3, "##no": 4, "nope": 5}

        def decode(self, ids, **_):
            return {1: "##yes", 2: "yes", 3: "no", 4: "##no", 5: "nope"}[ids[0]]

    tokens = find_yes_no_tokens(WordPieceLike())
    assert tokens.yes_ids == (2,) and tokens.no_ids == (3,)


def test_yes_probability_is_renormalised_softmax_mass():
    tokens = YesNoTokens((1, 3), (2,), ("yes", "Yes"), ("no",))
    logits = torch.tensor([[0.0, 2.0, 1.0, -1.0, 5.0], [3.0, -50.0, 40.0, -50.0, 0.0]])
    p = torch.softmax(logits, -1)
    expected = (p[:, 1] + p[:, 3]) / (p[:, 1] + p[:, 3] + p[:, 2])
    got = yes_probability_from_logits(logits, tokens)
    assert torch.allclose(got, expected, atol=1e-7)
    assert got[1] < 1e-30 or got[1] == 0.0                   # stable for extreme logits (no NaN)
    assert not torch.isnan(got).any()
    # half precision input is computed in float32
    assert yes_probability_from_logits(logits.half(), tokens).dtype == torch.float32
    assert torch.allclose(yes_no_mass(logits, tokens), p[:, 1] + p[:, 2] + p[:, 3])


def test_length_grouped_batches_is_deterministic_and_complete():
    lengths = [5, 1, 9, 5, 3, 9, 2]
    batches = length_grouped_batches(lengths, 3)
    assert batches == [[2, 5, 0], [3, 4, 6], [1]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    with pytest.raises(ValueError):
        length_grouped_batches(lengths, 0)


def test_ordered_by_length_roundtrip():
    items = ["bb", "a", "dddd", "ccc", "a2"]
    ordered, order = ordered_by_length(items, len)
    assert ordered == ["dddd", "ccc", "bb", "a2", "a"]
    assert restore_order([s.upper() for s in ordered], order) == [s.upper() for s in items]


class FakeOOM(RuntimeError):
    pass


def test_oom_backoff_halves_keeps_finished_work_and_sticks():
    calls: list[int] = []

    def fn(chunk):
        calls.append(len(chunk))
        if len(chunk) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return [x * 10 for x in chunk]

    freed = []
    backoff = OomBackoff(16, on_oom=lambda: freed.append(1))
    assert backoff.run(list(range(10)), fn) == [x * 10 for x in range(10)]
    # 10 fails, 5 fails, 2,2,2,2,2 succeed (size 2 sticks), no chunk that succeeded is re-run
    assert calls == [10, 5, 2, 2, 2, 2, 2]
    assert backoff.max_batch == 2 and backoff.halvings == 2 and len(freed) == 2
    calls.clear()
    assert backoff.run([1, 2, 3], fn) == [10, 20, 30]
    assert calls == [2, 1]                                     # later calls start at the reduced size


def test_oom_backoff_gives_up_at_one_and_passes_other_errors():
    def always_oom(chunk):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        OomBackoff(4, on_oom=lambda: None).run([1, 2, 3, 4], always_oom)

    def broken(chunk):
        raise ValueError("bad input")

    backoff = OomBackoff(8, on_oom=lambda: None)
    with pytest.raises(ValueError):
        backoff.run([1, 2], broken)
    assert backoff.max_batch == 8                              # not an OOM: no halving


def test_oom_backoff_injectable_detector():
    seen = []

    def fn(chunk):
        if len(chunk) > 1 and not seen:
            seen.append(1)
            raise FakeOOM("fake")
        return list(chunk)

    backoff = OomBackoff(None, is_oom=lambda e: isinstance(e, FakeOOM), on_oom=lambda: None)
    assert backoff.run([1, 2, 3, 4], fn) == [1, 2, 3, 4] and backoff.max_batch == 2


def test_is_out_of_memory():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(MemoryError())
