"""MMFSNet: multi-scale image features into a stock diffusers UNet by hooks (DEEM stage 1)."""

from __future__ import annotations

import pytest
import torch

from deem_eval.model_adapters.deem.model.presets import TINY_UNET
from deem_eval.model_adapters.deem.training.mmfs import FeatureInjection, MMFSNet, cell_centres, skip_layout

diffusers = pytest.importorskip("diffusers")

PIXEL_UNET = {"sample_size": 32, "in_channels": 3, "out_channels": 3, "layers_per_block": 1,
              "block_out_channels": [32, 64, 64],
              "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
              "cross_attention_dim": 32, "attention_head_dim": 8, "norm_num_groups": 8}
SD21_BASE_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                  "block_out_channels": [320, 640, 1280, 1280],
                  "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                  "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "cross_attention_dim": 1024,
                  "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True}
STRIDES = (4, 8, 16, 32)
FEATURE_DIM = 16


def _build(unet_config: dict, seed: int = 0):
    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(**unet_config).eval().requires_grad_(False)
    mmfs = MMFSNet.from_unet(unet, feature_dim=FEATURE_DIM, level_strides=STRIDES, heads=2, points=3)
    return unet, mmfs


def _inputs(unet_config: dict, batch: int, seed: int = 1, image: int = 64):
    g = torch.Generator().manual_seed(seed)
    size = unet_config["sample_size"]
    sample = torch.randn(batch, unet_config["in_channels"], size, size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    cond = torch.randn(batch, 5, unet_config["cross_attention_dim"], generator=g)
    levels = [torch.randn(batch, FEATURE_DIM, image // s, image // s, generator=g) for s in STRIDES]
    return sample, t, cond, levels


def _open(mmfs: MMFSNet, seed: int = 2) -> None:
    """What training would do to the zero convs: make them non-zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for site in [*mmfs.skips, mmfs.mid]:
            site.zero_conv.weight.copy_(torch.randn(site.zero_conv.weight.shape, generator=g) * 0.2)
            site.zero_conv.bias.copy_(torch.randn(site.zero_conv.bias.shape, generator=g) * 0.2)


def _run(unet, mmfs, sample, t, cond, levels):
    with mmfs.bound(levels):
        return unet(sample, t, cond).sample


@pytest.mark.parametrize("config", [TINY_UNET, PIXEL_UNET], ids=["tiny-latent", "pixel-3-level"])
def test_zero_init_leaves_the_unet_unchanged_and_hooks_are_inert_outside_bound(config):
    unet, mmfs = _build(config)
    sample, t, cond, levels = _inputs(config, 2)
    with torch.no_grad():
        before = unet(sample, t, cond).sample
        handles = mmfs.attach(unet)
        with mmfs.bound(levels):
            inside = unet(sample, t, cond).sample
        outside = unet(sample, t, cond).sample
        _open(mmfs)
        assert not torch.equal(_run(unet, mmfs, sample, t, cond, levels), before)
        assert torch.equal(unet(sample, t, cond).sample, before)        # opened, but not bound: inert
    assert torch.equal(inside, before) and torch.equal(outside, before)
    for h in handles:
        h.remove()
    with torch.no_grad(), mmfs.bound(levels):
        assert torch.equal(unet(sample, t, cond).sample, before)        # detached


def test_gradients_reach_mmfs_and_the_image_levels_but_not_the_unet():
    unet, mmfs = _build(PIXEL_UNET)
    mmfs.attach(unet)
    _open(mmfs)
    sample, t, cond, levels = _inputs(PIXEL_UNET, 2)
    levels = [lvl.requires_grad_() for lvl in levels]
    _run(unet, mmfs, sample, t, cond, levels).square().mean().backward()
    assert all(p.grad is None for p in unet.parameters())
    missing = [n for n, p in mmfs.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    assert all(lvl.grad is not None and lvl.grad.abs().sum() > 0 for lvl in levels)


def test_one_step_from_zero_init_opens_the_branch():
    """No second zero factor (gate) behind the zero conv: its gradient is non-zero at step 0."""
    unet, mmfs = _build(TINY_UNET)
    mmfs.attach(unet)
    sample, t, cond, levels = _inputs(TINY_UNET, 2)
    with torch.no_grad():
        before = unet(sample, t, cond).sample
    opt = torch.optim.SGD(mmfs.parameters(), lr=1.0)
    _run(unet, mmfs, sample, t, cond, levels).sub(1.0).square().mean().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(_run(unet, mmfs, sample, t, cond, levels), before)


def test_batch_rows_are_independent():
    unet, mmfs = _build(TINY_UNET)
    mmfs.attach(unet)
    _open(mmfs)
    sample, t, cond, levels = _inputs(TINY_UNET, 3)
    with torch.no_grad():
        full = _run(unet, mmfs, sample, t, cond, levels)
        for i in range(3):
            row = _run(unet, mmfs, sample[i:i + 1], t[i:i + 1], cond[i:i + 1], [lvl[i:i + 1] for lvl in levels])
            torch.testing.assert_close(full[i:i + 1], row, atol=1e-5, rtol=0)


def test_each_query_samples_around_its_own_cell():
    """Zero offsets, one level of the query map's size: query (i, j) reads exactly value (i, j) (with half
    the weight; the other half goes to the null slot)."""
    site = FeatureInjection(4, feature_dim=6, num_levels=1, heads=2, points=1)
    with torch.no_grad():
        for lin in (site.attn.sampling_offsets, site.attn.attention_weights):
            lin.weight.zero_()
            lin.bias.zero_()
    g = torch.Generator().manual_seed(0)
    feature, level = torch.randn(2, 4, 3, 5, generator=g), torch.randn(2, 6, 3, 5, generator=g)
    tokens = feature.flatten(2).transpose(1, 2)
    got = site.attn(tokens, site.attn.values([level]), reference=cell_centres(3, 5))
    values = site.attn.values([level])[0].view(2, 6, 15).transpose(1, 2)          # [B, HW, heads*hd]
    torch.testing.assert_close(got, site.attn.output_proj(0.5 * values), atol=1e-6, rtol=1e-5)
    assert torch.equal(cell_centres(1, 2), torch.tensor([[0.25, 0.5], [0.75, 0.5]]))


def test_mismatches_are_refused():
    unet, mmfs = _build(TINY_UNET)
    other, _ = _build(PIXEL_UNET)
    with pytest.raises(ValueError, match="built for skips"):
        mmfs.attach(other)
    mmfs.attach(unet)
    sample, t, cond, levels = _inputs(TINY_UNET, 2)
    with pytest.raises(ValueError, match="expected 4 levels"), mmfs.bound(levels[:3]):
        pass
    with pytest.raises(ValueError, match="not one image"), mmfs.bound(levels[::-1]):
        pass
    with pytest.raises(ValueError, match="UNet batch 1"), torch.no_grad():
        _run(unet, mmfs, sample[:1], t[:1], cond[:1], levels)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sd21_mmfs() -> MMFSNet:
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**SD21_BASE_UNET)
        return MMFSNet.from_unet(unet, feature_dim=1024, level_strides=STRIDES)


def test_parameter_count_at_stable_diffusion_21_base_size():
    """12 skips (conv_in + 11 down-block res samples) + the mid block; per site the attention's value
    projection (1024 -> 1024) is the same, the rest scales with the skip's channels."""
    assert skip_layout(SD21_BASE_UNET) == ([320] * 4 + [640] * 3 + [1280] * 5, [3, 3, 3, 2], 1280)
    mmfs = _sd21_mmfs()
    per_site = {320: 1_646_016, 640: 2_650_816, 1280: 5_889_216}
    assert [_count(s) for s in mmfs.skips] == [per_site[c] for c in skip_layout(SD21_BASE_UNET)[0]]
    assert _count(mmfs.mid) == per_site[1280]
    assert _count(mmfs) == 49_871_808      # the paper says ~57 M for its (unpublished in detail) MMFSNet


def test_deem_7b_stage1_trainable_parameter_count():
    """Visual tokenizer (ConvNeXt-B trunk, adapters, resampler, projections) + the c2 adapter the UNet path
    needs (MultiScaleEncoder adapts only what the LLM reads) + LLM cross-attention + image_start + MMFSNet."""
    from deem_eval.model_adapters.deem.model.config import VisualConfig
    from deem_eval.model_adapters.deem.model.llm import build_xattn_blocks
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B
    from deem_eval.model_adapters.deem.model.visual import VisualTokenizer

    config = VisualConfig()
    with torch.device("meta"):
        visual = VisualTokenizer(config, DEEM_7B.llm.hidden_size, DEEM_7B.diffusion.condition_dim)
        xattn = build_xattn_blocks(DEEM_7B)
    c2_adapter = config.convnext.dims[0] * config.feature_dim + config.feature_dim
    parts = {"visual": _count(visual), "c2 adapter": c2_adapter, "llm xattn": _count(xattn),
             "image_start": DEEM_7B.llm.hidden_size, "mmfs": _count(_sd21_mmfs())}
    assert parts == {"visual": 197_107_584, "c2 adapter": 132_096, "llm xattn": 197_252_104, "image_start": 4096,
                     "mmfs": 49_871_808}
    assert sum(parts.values()) == 444_367_688      # the paper: 494.9 M (494.77 M in code, with a decoder)
