"""DEEM architecture, inference adapter, presets and checkpoints (deem-tiny on CPU; 7B shapes on meta)."""

from __future__ import annotations

import copy

import pytest
import torch

from deem_eval.core.errors import DeemEvalError
from tests.deem_tiny import one_thread, requests  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- configuration and prompt --------------------------------------------------------------------------

def test_prompt_is_the_official_one():
    from deem_eval.model_adapters.deem.model.config import PromptConfig

    text = PromptConfig().render("Is there a dog in the image?", "<IMG>")
    assert text == ("You are a helpful assistant.\n\n ## USER: Based on the image, please answer the question. "
                    "<IMG>Is there a dog in the image? \n ## ASSISTANT: The answer is")


def test_config_json_round_trip_and_differences():
    from deem_eval.model_adapters.deem.model.config import DeemConfig, config_differences
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B, DEEM_TINY

    for preset in (DEEM_TINY, DEEM_7B):
        assert DeemConfig.from_dict(preset.to_dict()) == preset
    diffs = config_differences(DEEM_7B, DEEM_TINY)
    assert "llm.hidden_size: 4096 != 64" in diffs
    assert "visual.num_queries: 77 != 8" in diffs
    assert config_differences(DEEM_TINY, DEEM_TINY) == []


def test_7b_preset_is_the_papers_configuration():
    from deem_eval.model_adapters.deem.model.llm import xattn_layer_indices
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B

    c = DEEM_7B
    assert c.visual.convnext.dims == (128, 256, 512, 1024) and c.visual.convnext.depths == (3, 3, 27, 3)
    assert (c.visual.num_queries, c.visual.width, c.visual.layers) == (77, 768, 12)
    assert xattn_layer_indices(c) == [0, 4, 8, 12, 16, 20, 24, 28]
    d = c.diffusion
    assert (d.t_min, d.t_max, d.weight, d.condition_dim, d.image_size) == (200, 799, 5.0, 1024, 512)
    assert c.llm_source == "hub:lmsys/vicuna-7b-v1.5"
    assert c.encoder_source == "hub:laion/CLIP-convnext_base_w_320-laion_aesthetic-s13B-b82K"
    assert c.diffusion.source == "hub:stabilityai/stable-diffusion-2-1-base"


def test_7b_visual_shapes_on_meta_device():
    """The paper-sized visual tokenizer, shape-checked without allocating memory."""
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B
    from deem_eval.model_adapters.deem.model.visual import VisualTokenizer

    with torch.device("meta"):
        visual = VisualTokenizer(DEEM_7B.visual, 4096, 1024)
        out = visual(torch.zeros(2, 3, 256, 256))
        cond = visual.condition(out)
    assert out.queries.shape == (2, 77, 768)
    assert out.llm_tokens.shape == (2, 77, 4096)
    assert cond.shape == (2, 77, 1024)
    assert [tuple(lvl.shape) for lvl in out.levels] == [(2, 1024, 32, 32), (2, 1024, 16, 16), (2, 1024, 8, 8)]
    trunk = sum(p.numel() for p in visual.encoder.trunk.parameters())
    assert 87.0e6 < trunk < 88.0e6            # ConvNeXt-B without its classifier


# ---- ConvNeXt trunk ------------------------------------------------------------------------------------

def test_convnext_names_match_timm_and_open_clip_loads(tmp_path):
    from deem_eval.model_adapters.deem.model.config import ConvNeXtConfig
    from deem_eval.model_adapters.deem.model.convnext import ConvNeXt, load_open_clip_trunk

    cfg = ConvNeXtConfig(depths=(1, 2, 1, 1), dims=(8, 16, 24, 32))
    keys = set(ConvNeXt(cfg).state_dict())
    for key in ("stem.0.weight", "stem.1.bias", "stages.0.blocks.0.conv_dw.weight", "stages.1.blocks.1.norm.weight",
                "stages.2.blocks.0.mlp.fc1.weight", "stages.3.blocks.0.mlp.fc2.bias", "stages.0.blocks.0.gamma",
                "stages.1.downsample.0.weight", "stages.1.downsample.1.weight", "head.norm.weight"):
        assert key in keys
    assert not any(k.startswith("stages.0.downsample") for k in keys)   # stage 0 keeps the stem's resolution

    source = ConvNeXt(cfg)
    with torch.no_grad():
        for i, p in enumerate(source.parameters()):
            p.copy_(torch.full_like(p, 0.01 * (i + 1)))
    state = {f"visual.trunk.{k}": v for k, v in source.state_dict().items()}
    state["visual.head.proj.weight"] = torch.zeros(4, 32)     # CLIP projection and text tower: ignored
    state["text.token_embedding.weight"] = torch.zeros(3, 4)
    torch.save(state, tmp_path / "open_clip_pytorch_model.bin")
    target = ConvNeXt(cfg)
    load_open_clip_trunk(target, tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    with pytest.raises(DeemEvalError, match="do not match"):
        load_open_clip_trunk(ConvNeXt(ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32))), tmp_path)


# ---- deformable cross-attention ----------------------------------------------------------------------------

def _reference_deformable(block, hidden, levels, mask):
    """Naive loops: bilinear sampling (zero padding, align_corners=False) at 0.5 + offset*ratio/size."""
    b, n, _ = hidden.shape
    heads, points, hd = block.heads, block.points, block.head_dim
    q = block.query_proj(block.query_norm(hidden))
    offsets = block.sampling_offsets(q).view(b, n, heads, points, 2)
    logits = block.attention_weights(q).view(b, n, heads, block.levels * points)
    weights = torch.softmax(torch.cat([logits, torch.zeros(b, n, heads, 1)], -1), -1)[..., :-1]
    weights = weights.view(b, n, heads, block.levels, points)
    values = [block.value_proj(block.value_norm(lvl.flatten(2).transpose(1, 2))).transpose(1, 2)
              .reshape(b, -1, *lvl.shape[2:]) for lvl in levels]
    out = torch.zeros(b, n, heads * hd)
    for bi in range(b):
        for t in range(n):
            for h in range(heads):
                acc = torch.zeros(hd)
                for li, v in enumerate(values):
                    H, W = v.shape[-2:]
                    for p in range(points):
                        ox, oy = offsets[bi, t, h, p] * block.scale_ratios[li]
                        x = (0.5 + ox / W) * W - 0.5
                        y = (0.5 + oy / H) * H - 0.5
                        x0, y0 = int(torch.floor(x)), int(torch.floor(y))
                        sample = torch.zeros(hd)
                        for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                            wgt = (1 - abs(x - xx)) * (1 - abs(y - yy))
                            if 0 <= yy < H and 0 <= xx < W:
                                sample = sample + wgt * v[bi, h * hd:(h + 1) * hd, yy, xx]
                        acc = acc + weights[bi, t, h, li, p] * sample
                out[bi, t, h * hd:(h + 1) * hd] = acc
    return block.output_proj(out) * torch.tanh(block.gate) * mask.unsqueeze(-1)


def test_deformable_attention_matches_naive_bilinear_reference():
    from deem_eval.model_adapters.deem.model.deform_attn import DeformableCrossAttention
    from deem_eval.model_adapters.deem.model.init import init_generic, init_xattn

    block = DeformableCrossAttention(query_dim=8, value_dim=6, scale_ratios=(2.0, 1.0), heads=2, points=3)
    init_xattn(block, 3, "x", offset_init=3.0)
    init_generic(block.sampling_offsets, 4, "offsets")     # offsets that depend on the token, too
    with torch.no_grad():
        block.gate.fill_(0.7)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 4, 8, generator=g)
    levels = [torch.randn(2, 6, 6, 5, generator=g), torch.randn(2, 6, 3, 3, generator=g)]
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 1]], dtype=torch.float32)
    fast = block(hidden, block.values(levels), mask)
    slow = _reference_deformable(block, hidden, levels, mask)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)
    assert torch.all(fast[0, 0] == 0) and torch.all(fast[1, 2] == 0)


def test_closed_gate_leaves_the_llm_unchanged_and_opens_only_after_the_image(tiny_deem):
    model = copy.deepcopy(tiny_deem)
    reqs = requests(2)
    from deem_eval.model_adapters.deem.model.images import to_pixels

    pixels = to_pixels([r.image for r in reqs], 32, min_side=16)
    ids, mask = model.tokenize_prompts([r.question for r in reqs])

    def all_logits(use_image: bool):
        visual, embeds, positions, image_pos = model._inputs(pixels, ids, mask)
        with torch.no_grad():
            if use_image:
                with model._context.bound(visual.levels, image_pos):
                    return model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
            return model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits

    torch.testing.assert_close(all_logits(True), all_logits(False), atol=0, rtol=0)
    with torch.no_grad():
        for block in model.xattn:
            block.gate.fill_(1.0)
    opened, plain = all_logits(True), all_logits(False)
    first_image = (ids == model.image_token_id).float().argmax(1)
    for row in range(2):
        before = slice(0, int(first_image[row]))        # prompt text before the image: untouched
        torch.testing.assert_close(opened[row, before], plain[row, before], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(opened[row, -1], plain[row, -1])


# ---- model, adapter ----------------------------------------------------------------------------------------

def test_tiny_shapes(tiny_deem):
    from deem_eval.model_adapters.deem.model.images import to_pixels

    pixels = to_pixels([r.image for r in requests(3)], 32, min_side=16)
    with torch.no_grad():
        out = tiny_deem.visual(pixels)
        cond = tiny_deem.visual.condition(out)
    assert out.queries.shape == (3, 8, 32) and out.llm_tokens.shape == (3, 8, 64) and cond.shape == (3, 8, 32)
    assert [tuple(lvl.shape) for lvl in out.levels] == [(3, 32, 8, 8), (3, 32, 4, 4), (3, 32, 2, 2)]
    ids, mask = tiny_deem.tokenize_prompts(["Is there a dog in the image?", "Is there a cat?"])
    assert int((ids == tiny_deem.image_token_id).sum(1).unique()) == 8
    assert torch.all(mask[:, -1] == 1) and mask[1, 0] == 0          # left padding
    assert tiny_deem.next_token_logits(pixels[:2], ids, mask).shape == (2, 1024)


def test_build_is_deterministic_per_seed(tiny_deem):
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    again = build_model(DEEM_TINY, seed=0).state_dict()
    other = build_model(DEEM_TINY, seed=1).state_dict()
    ref = tiny_deem.state_dict()
    assert all(torch.equal(ref[k], again[k]) for k in ref)
    assert not torch.equal(ref["visual.resampler.queries"], other["visual.resampler.queries"])


@pytest.fixture(scope="module")
def tiny_adapter():
    from deem_eval.model_adapters.deem.adapter import DeemAdapter, DeemAdapterConfig

    return DeemAdapter(DeemAdapterConfig(preset="deem-tiny", scoring="both"))


def test_adapter_answers_identically_at_batch_sizes_1_and_8(tiny_adapter):
    reqs = requests(8)
    batched = tiny_adapter.generate(reqs)
    single = [tiny_adapter.generate([r])[0] for r in reqs]
    assert batched == single
    assert len(set(batched)) > 1                       # questions and images differ, so do answers
    p8 = tiny_adapter.yes_probability(reqs)
    p1 = [tiny_adapter.yes_probability([r])[0] for r in reqs]
    assert p8 == pytest.approx(p1, abs=1e-5)
    assert all(0.0 < p < 1.0 for p in p8)


def test_adapter_greedy_and_beam_are_both_deterministic(tiny_adapter):
    import dataclasses

    reqs = requests(3)
    beam = tiny_adapter.generate(reqs)
    assert tiny_adapter.generate(reqs) == beam
    tiny_adapter.config = dataclasses.replace(tiny_adapter.config, decoding="greedy")
    try:
        greedy = tiny_adapter.generate(reqs)
        assert greedy == tiny_adapter.generate(reqs)
        greedy_model = [tiny_adapter.model.generate(*tiny_adapter._inputs([r]), num_beams=1)[0] for r in reqs]
        assert greedy == greedy_model
    finally:
        tiny_adapter.config = dataclasses.replace(tiny_adapter.config, decoding="beam")


def test_image_smaller_than_the_stride_is_refused(tiny_adapter):
    from PIL import Image

    from deem_eval.core.adapters import Request
    from deem_eval.model_adapters.deem.model.images import ImageTooSmallError

    small = Request("tiny-image", Image.new("RGB", (40, 9)), "Is there a dog?")
    with pytest.raises(ImageTooSmallError, match=r"tiny-image: image is 40x9 px, smaller than the encoder's stride"):
        tiny_adapter.generate([small])
    with pytest.raises(DeemEvalError, match="smaller than the encoder stride"):
        tiny_adapter.model.visual(torch.zeros(1, 3, 8, 8))


# ---- checkpoints -------------------------------------------------------------------------------------------

def _perturbed_tiny():
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    model = build_model(DEEM_TINY, seed=0)
    with torch.no_grad():           # as if trained: open the gates, move the projections
        for block in model.xattn:
            block.gate.fill_(0.5)
        model.visual.to_llm.weight.mul_(300.0)
        model.visual.encoder.adapters["2"].bias.add_(0.1)
    return model


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    from deem_eval.model_adapters.deem.model.checkpoint import load_checkpoint, save_checkpoint
    from deem_eval.model_adapters.deem.model.images import to_pixels
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    model = _perturbed_tiny()
    reqs = requests(4)
    pixels = to_pixels([r.image for r in reqs], 32, min_side=16)
    ids, mask = model.tokenize_prompts([r.question for r in reqs])
    ref_logits = model.next_token_logits(pixels, ids, mask)
    ref_text = model.generate(pixels, ids, mask)
    fresh_logits = build_model(DEEM_TINY, seed=0).next_token_logits(pixels, ids, mask)
    assert not torch.allclose(ref_logits, fresh_logits)     # the perturbation matters

    for contents in ("full", "delta"):
        path = save_checkpoint(model, tmp_path / contents, contents=contents)
        assert (path / "llm").is_dir() == (contents == "full")
        loaded = load_checkpoint(path, expect=DEEM_TINY)
        ids2, mask2 = loaded.tokenize_prompts([r.question for r in reqs])
        assert torch.equal(ids2, ids)
        # weights are bit-identical; a reloaded LLM may pick another matmul kernel (memory alignment): ~1e-6
        torch.testing.assert_close(loaded.next_token_logits(pixels, ids2, mask2), ref_logits, atol=1e-5, rtol=1e-5)
        assert loaded.generate(pixels, ids2, mask2) == ref_text
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_checkpoint_that_does_not_match_the_preset_is_refused(tmp_path):
    from deem_eval.model_adapters.deem.adapter import DeemAdapter, DeemAdapterConfig
    from deem_eval.model_adapters.deem.model.checkpoint import save_checkpoint

    path = save_checkpoint(_perturbed_tiny(), tmp_path / "ckpt", contents="delta")
    with pytest.raises(DeemEvalError) as err:
        DeemAdapter(DeemAdapterConfig(preset="deem-7b", checkpoint=path))
    message = str(err.value)
    assert "does not match preset 'deem-7b'" in message and "llm.hidden_size: 4096 != 64" in message
    adapter = DeemAdapter(DeemAdapterConfig(checkpoint=path))       # its own config: fine
    assert adapter.label == "deem:ckpt" and adapter.generate(requests(1))


def test_missing_components_are_named_with_how_to_fetch(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from deem_eval.model_adapters.deem.adapter import DeemAdapter, DeemAdapterConfig

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DEEM_EVAL_COMPONENTS", raising=False)
    with pytest.raises(DeemEvalError, match="untrained"):
        DeemAdapter(DeemAdapterConfig(preset="deem-7b"))
    with pytest.raises(DeemEvalError) as err:
        DeemAdapter(DeemAdapterConfig(preset="deem-7b", allow_untrained=True, components=tmp_path))
    message = str(err.value)
    for repo in ("laion/CLIP-convnext_base_w_320-laion_aesthetic-s13B-b82K", "lmsys/vicuna-7b-v1.5"):
        assert f"huggingface-cli download {repo}" in message
    assert "stable-diffusion" not in message            # inference never needs the diffusion teacher


def test_component_build_loads_the_encoder_and_llm_checkpoints(tmp_path):
    """The deem-7b code path (hub sources found in a components directory) at deem-tiny size."""
    from transformers import LlamaForCausalLM

    from deem_eval.model_adapters.deem.model.config import ConvNeXtConfig
    from deem_eval.model_adapters.deem.model.convnext import ConvNeXt
    from deem_eval.model_adapters.deem.model.init import init_generic
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model, llama_config
    from deem_eval.model_adapters.deem.model.tiny_tokenizer import tiny_tokenizer

    llm_dir = tmp_path / "components" / "org" / "llm"
    llm = LlamaForCausalLM(llama_config(DEEM_TINY.llm))
    init_generic(llm, 5, "component-llm", style="normal", std=0.1)
    llm.save_pretrained(llm_dir)
    tiny_tokenizer().save_pretrained(llm_dir)
    clip_dir = tmp_path / "components" / "org" / "clip"
    clip_dir.mkdir(parents=True)
    trunk = ConvNeXt(DEEM_TINY.visual.convnext)
    init_generic(trunk, 6, "component-trunk")
    torch.save({f"visual.trunk.{k}": v for k, v in trunk.state_dict().items()},
               clip_dir / "open_clip_pytorch_model.bin")

    config = DEEM_TINY.replace(llm_source="hub:org/llm", tokenizer_source="hub:org/llm", encoder_source="hub:org/clip")
    model = build_model(config, seed=0, components=tmp_path / "components")
    assert all(torch.equal(v, model.visual.encoder.trunk.state_dict()[k]) for k, v in trunk.state_dict().items())
    assert all(torch.equal(v, model.llm.state_dict()[k]) for k, v in llm.state_dict().items())
    assert model.generate(*_inputs(model, requests(2)))

    wrong = config.replace(visual=DEEM_TINY.visual.__class__(**{
        **DEEM_TINY.visual.__dict__, "convnext": ConvNeXtConfig(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32),
                                                               stem_stride=2)}))
    with pytest.raises(DeemEvalError, match="ConvNeXt weights do not match"):
        build_model(wrong, seed=0, components=tmp_path / "components")
    bigger = config.replace(llm=DEEM_TINY.llm.__class__(**{**DEEM_TINY.llm.__dict__, "hidden_size": 128}))
    with pytest.raises(DeemEvalError, match="LLM shape does not match"):
        build_model(bigger, seed=0, components=tmp_path / "components")


def _inputs(model, reqs):
    from deem_eval.model_adapters.deem.model.images import to_pixels

    ids, mask = model.tokenize_prompts([r.question for r in reqs])
    return to_pixels([r.image for r in reqs], 32, min_side=16), ids, mask
