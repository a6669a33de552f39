"""Audit fixes: delta checkpoints load their saved tokenizer; cross-attention refuses missing position ids."""

from __future__ import annotations

import shutil

import pytest
import torch

from deem_eval.core.errors import DeemEvalError
from tests.deem_tiny import one_thread, requests  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

EXTRA = "zebracornish"


def _inputs(model, reqs):
    from deem_eval.model_adapters.deem.model.images import to_pixels

    v = model.config.visual
    pixels = to_pixels([r.image for r in reqs], v.image_size, min_side=v.stride)
    return (pixels, *model.tokenize_prompts([r.question for r in reqs]))


# ---- 1. delta checkpoints and their tokenizer --------------------------------------------------------------

def test_delta_checkpoint_loads_its_saved_tokenizer(tmp_path, tiny_deem):
    from transformers import AutoTokenizer

    from deem_eval.model_adapters.deem.model.checkpoint import load_checkpoint, save_checkpoint
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY

    path = save_checkpoint(tiny_deem, tmp_path / "ckpt", contents="delta")
    saved = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
    assert EXTRA not in saved.get_vocab()
    saved.add_tokens([EXTRA])                       # the saved copy now differs from a rebuilt one
    saved.save_pretrained(str(path / "tokenizer"))

    loaded = load_checkpoint(path, expect=DEEM_TINY)
    assert EXTRA in loaded.tokenizer.get_vocab()
    assert loaded.tokenizer(EXTRA, add_special_tokens=False).input_ids == [saved.convert_tokens_to_ids(EXTRA)]
    # the image tokens and the generable vocabulary are those of the checkpoint, as before
    assert (loaded.image_start_id, loaded.image_token_id) == (tiny_deem.image_start_id, tiny_deem.image_token_id)
    assert loaded.text_vocab == tiny_deem.text_vocab
    reqs = requests(2)
    pixels, ids, mask = _inputs(loaded, reqs)
    assert torch.equal(ids, _inputs(tiny_deem, reqs)[1])
    assert loaded.generate(pixels, ids, mask, num_beams=1, max_new_tokens=3) == \
        tiny_deem.generate(pixels, ids, mask, num_beams=1, max_new_tokens=3)


def test_delta_checkpoint_without_a_tokenizer_copy_rebuilds_it(tmp_path, tiny_deem):
    from deem_eval.model_adapters.deem.model.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tiny_deem, tmp_path / "ckpt", contents="delta")
    shutil.rmtree(path / "tokenizer")
    loaded = load_checkpoint(path)
    assert loaded.tokenizer.get_vocab() == tiny_deem.tokenizer.get_vocab()


def test_full_checkpoint_without_its_tokenizer_is_a_clear_error(tmp_path, tiny_deem):
    from deem_eval.model_adapters.deem.model.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tiny_deem, tmp_path / "full", contents="full")
    shutil.rmtree(path / "tokenizer")
    with pytest.raises(DeemEvalError, match="incomplete checkpoint, tokenizer/ is missing"):
        load_checkpoint(path)


# ---- 2. cross-attention needs position ids -----------------------------------------------------------------

def test_image_context_mask_without_position_ids_raises():
    from deem_eval.model_adapters.deem.model.llm import ImageContext

    context = ImageContext()
    with context.bound([torch.zeros(2, 4, 2, 2)], torch.tensor([3, 1])):
        with pytest.raises(DeemEvalError, match="without position_ids"):
            context.mask(None, 2, 5, "cpu")
        mask = context.mask(torch.arange(5).unsqueeze(0), 4, 5, "cpu")     # beams: rows repeat per image
    assert mask.tolist() == [[0, 0, 0, 1, 1]] * 2 + [[0, 1, 1, 1, 1]] * 2


def test_a_layer_called_without_position_ids_raises(tiny_deem):
    """A direct call of a hooked decoder layer (bypassing Llama's model forward) has no position ids."""
    visual = tiny_deem.visual(_inputs(tiny_deem, requests(1))[0])
    layer = tiny_deem.llm.model.layers[0]
    hidden = torch.zeros(1, 3, tiny_deem.llm.config.hidden_size)
    block = tiny_deem.xattn[0]
    with tiny_deem._context.bound(visual.levels, torch.tensor([0])), \
            pytest.raises(DeemEvalError, match="without position_ids"):
        block.layer_hook(layer, (hidden,), {}, (hidden,))


def test_generate_hands_position_ids_to_every_hooked_layer_call(tiny_deem):
    """HF generate derives position ids from the (left-padded) attention mask on the prompt and on each
    cached step; the cross-attention hooks must see exactly DeemModel's positions."""
    seen: list[torch.Tensor | None] = []

    def record(module, args, kwargs):
        seen.append(kwargs.get("position_ids"))

    reqs = requests(3)
    pixels, ids, mask = _inputs(tiny_deem, reqs)
    assert bool((mask == 0).any())                  # prompts of different lengths: left padding
    handle = tiny_deem.llm.model.layers[0].register_forward_pre_hook(record, with_kwargs=True)
    try:
        texts = tiny_deem.generate(pixels, ids, mask, num_beams=1, max_new_tokens=4, min_new_tokens=4)
        beam_texts = tiny_deem.generate(pixels, ids, mask, num_beams=3, max_new_tokens=2)
    finally:
        handle.remove()
    assert len(texts) == len(beam_texts) == 3 and all(isinstance(t, str) for t in texts)
    assert len(seen) >= 4 + 2 and all(p is not None for p in seen)
    prompt = seen[0].expand(3, -1)
    expected = tiny_deem.position_ids(mask)
    assert torch.equal(prompt[mask.bool()], expected[mask.bool()])
    for step, positions in enumerate(seen[1:4], start=1):      # one new token per row and step
        assert positions.shape[-1] == 1
        assert torch.equal(positions.expand(3, 1).squeeze(1), expected[:, -1] + step)
