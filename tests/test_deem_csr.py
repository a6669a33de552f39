"""CSR: the diffusion-aligned encoder loss - timesteps, gradients (encoder side only), a few steps lower it,
captions (next-token loss, truncation), and the LLaVA vision-tower variant."""

from __future__ import annotations

import pytest
import torch

from deem_eval.core.rng import derive_torch_generator
from tests.deem_tiny import one_thread  # noqa: F401 (fixture)
from tests.hf_tiny import make_images

pytestmark = pytest.mark.usefixtures("one_thread")


def _fresh_target(groups=("encoder", "tokenizer", "xattn")):
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.csr import DeemCsrTarget

    return DeemCsrTarget(build_model(DEEM_TINY, seed=0), groups)


def test_timesteps_are_squeezed_into_200_799_like_the_official_code(tiny_teacher):
    from deem_eval.model_adapters.deem.training.diffusion import squeeze_timesteps

    t0 = torch.arange(1000)
    t = squeeze_timesteps(t0, 1000, 200, 799)
    official = torch.round((t0 - 500) * 0.6 + 500).long()
    assert torch.equal(t, official)
    assert int(t.min()) == 200 and int(t.max()) == 799
    drawn = tiny_teacher.timesteps(4000, derive_torch_generator(0, "t"), "cpu")
    assert int(drawn.min()) >= 200 and int(drawn.max()) <= 799
    assert int(drawn.min()) < 210 and int(drawn.max()) > 790


def test_csr_gradients_reach_the_encoder_side_only(tiny_teacher):
    from deem_eval.model_adapters.deem.training.csr import csr_losses

    target = _fresh_target()
    model = target.model
    images = make_images(2, size=40)
    losses = csr_losses(target, tiny_teacher, images, ["a photo of a dog", None], derive_torch_generator(0, "g"),
                        weight=5.0)
    losses.total.backward()
    assert losses.text is not None and losses.text_tokens > 0

    def grad_norm(prefix):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert grads, prefix
        return sum(float(g.abs().sum()) for g in grads if g is not None)

    for prefix in ("visual.encoder.trunk.stem", "visual.encoder.trunk.stages.3", "visual.encoder.adapters",
                   "visual.encoder.pooled_adapter", "visual.resampler", "visual.pos_proj", "visual.to_condition",
                   "visual.to_llm", "image_start"):
        assert grad_norm(prefix) > 0, prefix
    for block in model.xattn:                # gate 0: only the gate itself gets gradient at first
        assert float(block.gate.grad.abs()) > 0
    assert all(p.grad is None and not p.requires_grad for p in model.llm.parameters())
    assert all(p.grad is None and not p.requires_grad for p in tiny_teacher.parameters())


def test_without_captions_only_the_diffusion_path_gets_gradient(tiny_teacher):
    from deem_eval.model_adapters.deem.training.csr import csr_losses

    target = _fresh_target()
    losses = csr_losses(target, tiny_teacher, make_images(2, size=40), [None, None], derive_torch_generator(0, "g"),
                        weight=5.0)
    losses.total.backward()
    assert losses.text is None
    assert float(losses.total.detach()) == pytest.approx(5.0 * losses.diffusion, rel=1e-6)
    assert target.model.visual.to_llm.weight.grad is None
    assert float(target.model.visual.to_condition.weight.grad.abs().sum()) > 0


def test_frozen_groups_get_no_gradient(tiny_teacher):
    from deem_eval.model_adapters.deem.training.csr import csr_losses

    target = _fresh_target(groups=("tokenizer",))
    csr_losses(target, tiny_teacher, make_images(2, size=40), [None, None], derive_torch_generator(0, "g"),
               weight=5.0).total.backward()
    assert all(p.grad is None for p in target.model.visual.encoder.parameters())
    assert float(target.model.visual.to_condition.weight.grad.abs().sum()) > 0


def test_a_few_csr_steps_on_a_fixed_batch_lower_the_loss(tiny_teacher):
    from deem_eval.model_adapters.deem.training.csr import csr_losses

    target = _fresh_target()
    images = make_images(4, size=40)
    optimizer = torch.optim.Adam([p for _, p in target.trainable()], lr=3e-3)

    def loss():     # same batch, same noise and timesteps every time
        return csr_losses(target, tiny_teacher, images, [None] * 4, derive_torch_generator(0, "fixed"), weight=5.0)

    first = loss()
    first.total.backward()
    optimizer.step()
    optimizer.zero_grad()
    for _ in range(5):
        step = loss()
        step.total.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        last = loss()
    assert last.diffusion < first.diffusion * 0.99


def test_captions_longer_than_the_context_are_truncated_and_counted():
    target = _fresh_target()
    model = target.model
    from deem_eval.model_adapters.deem.model.images import to_pixels

    visual = model.visual(to_pixels(make_images(2, size=40), 32, min_side=16))
    long = " ".join(["dog"] * 200)
    loss = model.caption_loss(visual, [long, "a photo of a cat"])
    room = model.config.max_text_tokens - (model.config.visual.num_queries + 2) - 1
    short = len(model.tokenizer("a photo of a cat", add_special_tokens=False).input_ids)
    assert loss.truncated == 1
    assert loss.tokens == (room + 1) + (short + 1)          # caption tokens + EOS per row
    assert torch.isfinite(loss.loss)


def test_llava_vision_tower_csr(tiny_llava, tiny_teacher):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from deem_eval.model_adapters.deem.training.csr import LlavaCsrTarget, csr_losses

    model = LlavaForConditionalGeneration.from_pretrained(tiny_llava)
    processor = AutoProcessor.from_pretrained(tiny_llava)
    target = LlavaCsrTarget(model, processor, tiny_teacher.config.condition_dim, seed=0)
    assert target.projection.in_features == model.config.vision_config.hidden_size
    assert target.projection.out_features == tiny_teacher.config.condition_dim
    losses = csr_losses(target, tiny_teacher, make_images(2, size=40), ["a photo of a dog", "a photo of a cat"],
                        derive_torch_generator(0, "llava"), weight=5.0)
    losses.total.backward()
    assert losses.text is not None and losses.diffusion > 0
    tower = {n: p for n, p in model.named_parameters() if "vision_tower" in n}
    assert tower and all(p.requires_grad for p in tower.values())
    embeddings = [p for n, p in tower.items() if "embeddings" in n]       # below the feature layer: trained
    assert embeddings and all(float(p.grad.abs().sum()) > 0 for p in embeddings)
    assert float(target.projection.weight.grad.abs().sum()) > 0
    others = [p for n, p in model.named_parameters() if "vision_tower" not in n]
    assert others and all(p.grad is None for p in others)
