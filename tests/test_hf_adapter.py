"""The `hf` adapter on tiny random checkpoints (LLaVA-style and PaliGemma-style), saved and loaded by path."""

from __future__ import annotations

import pytest
import torch

from deem_eval.core.adapters import Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.hf import HFAdapter, HFConfig
from deem_eval.model_adapters.hf.presets import LLAVA_SHORT, PRESETS, VICUNA_V1_SYSTEM
from tests.hf_tiny import CLASSES, build_tiny_llava, make_images, single_torch_thread  # noqa: F401 (fixture)


def requests(n: int = 16) -> list[Request]:
    """Questions of different lengths on distinct images, so padding really varies inside a batch."""
    images = make_images(n)
    out = []
    for i in range(n):
        question = f"Is there a {CLASSES[i % len(CLASSES)]} in the image?"
        if i % 3 == 1:
            question = f"Is {CLASSES[(i + 4) % len(CLASSES)]} the main object in this image? Please answer yes or no."
        out.append(Request(f"q{i:02d}", images[i], question, CLASSES[i % len(CLASSES)]))
    return out


@pytest.fixture(scope="module")
def llava(tiny_llava):
    return HFAdapter(HFConfig(path=str(tiny_llava), max_new_tokens=6, scoring="both", device="cpu"))


@pytest.fixture(scope="module")
def pali(tiny_paligemma):
    return HFAdapter(HFConfig(path=str(tiny_paligemma), max_new_tokens=6, scoring="both", device="cpu"))


def one_by_one(adapter, method, reqs):
    return [getattr(adapter, method)([r])[0] for r in reqs]


@pytest.mark.parametrize("name", ["llava", "pali"])
def test_batched_greedy_equals_batch_of_one(name, request):
    adapter = request.getfixturevalue(name)
    reqs = requests(16)
    lengths = {int(adapter.encode([r])["attention_mask"].sum()) for r in reqs}
    assert len(lengths) >= 2, "prompts must differ in length for padding to matter"
    batched = adapter.generate(reqs)
    single = one_by_one(adapter, "generate", reqs)
    assert batched == single
    assert len(set(batched)) >= 8, "a degenerate model answering the same everywhere would prove nothing"
    assert all(t for t in batched)


def test_right_padding_would_be_caught(llava):
    """The equality above is a real check: the same batch right-padded gives different answers."""
    reqs = requests(16)
    reference = llava.generate(reqs)
    llava.tokenizer.padding_side = "right"
    try:
        wrong = llava.generate(reqs)
    finally:
        llava.tokenizer.padding_side = "left"
    assert wrong != reference


@pytest.mark.parametrize("name", ["llava", "pali"])
def test_yes_probability_batched_matches_single_and_manual(name, request):
    adapter = request.getfixturevalue(name)
    reqs = requests(12)
    adapter._first_step_probs.clear()
    batched = adapter.yes_probability(reqs)
    single = one_by_one(adapter, "yes_probability", reqs)
    assert batched == pytest.approx(single, abs=1e-5)
    assert all(0.0 < p < 1.0 for p in batched) and len({round(p, 4) for p in batched}) > 6
    # manual: full forward pass, softmax over the whole vocabulary, sum the yes / no variants
    inputs = adapter.encode(reqs[:1])
    with torch.no_grad():
        logits = adapter.model(**inputs).logits[0, -1].float()
    p = torch.softmax(logits, -1)
    yes = sum(p[i] for i in adapter.yes_no.yes_ids)
    no = sum(p[i] for i in adapter.yes_no.no_ids)
    assert batched[0] == pytest.approx(float(yes / (yes + no)), abs=1e-5)


def test_both_reuses_the_first_generation_step(llava):
    reqs = requests(8)
    llava._first_step_probs.clear()
    forward = llava.yes_probability(reqs)            # nothing cached: forward passes
    llava.generate(reqs)                             # caches first-step probabilities
    assert set(llava._first_step_probs) == {r.id for r in reqs}
    cached = llava.yes_probability(reqs)
    assert cached == pytest.approx(forward, abs=1e-5)
    assert not llava._first_step_probs               # consumed


def test_prompt_uses_chat_template_and_llava_preset(llava):
    assert llava.preset.name == "llava-1.5" and llava.prompt.kind == "chat_template"
    text = llava.prompt_text(Request("x", None, "Is there a dog in the image?"))
    assert text == f"{VICUNA_V1_SYSTEM} USER: <image>\nIs there a dog in the image?{LLAVA_SHORT} ASSISTANT:"
    assert llava.config.prompt_suffix == LLAVA_SHORT and llava.config.max_new_tokens == 6
    assert llava.label == "hf:tiny_llava"


def test_prompt_options_override_the_preset(tiny_llava):
    adapter = HFAdapter(HFConfig(path=str(tiny_llava), prompt_suffix="", system_prompt="", device="cpu"))
    assert adapter.prompt_text(Request("x", None, "Q?")) == "USER: <image>\nQ? ASSISTANT:"
    assert adapter.config.max_new_tokens == PRESETS["llava-1.5"].max_new_tokens
    custom = HFAdapter(HFConfig(path=str(tiny_llava), prompt_template="{image}\\nQ: {question}\\nA:",
                                prompt_suffix=" (yes/no)", preset="none", device="cpu"))
    assert custom.prompt.kind == "template"
    assert custom.prompt_text(Request("x", None, "Is it {red}?")) == "<image>\nQ: Is it {red}? (yes/no)\nA:"
    plain = HFAdapter(HFConfig(path=str(tiny_llava), preset="none", device="cpu"))
    assert plain.prompt_text(Request("x", None, "Q?")) == "USER: <image>\nQ? ASSISTANT:"


def test_processor_without_chat_template(tiny_llava_no_template, pali):
    adapter = HFAdapter(HFConfig(path=str(tiny_llava_no_template), max_new_tokens=3, device="cpu"))
    assert adapter.prompt.kind == "template"                       # the llava-1.5 preset's own format
    assert adapter.prompt_text(Request("x", None, "Q?")) == (
        f"{VICUNA_V1_SYSTEM} USER: <image>\nQ?{LLAVA_SHORT} ASSISTANT:")
    fallback = HFAdapter(HFConfig(path=str(tiny_llava_no_template), preset="none", max_new_tokens=3,
                                  device="cpu"))
    assert fallback.prompt.kind == "fallback"
    assert fallback.prompt_text(Request("x", None, "Q?")) == "<image>\nQ?"
    assert len(fallback.generate(requests(2))) == 2                 # the fallback prompt runs
    assert pali.preset.name == "paligemma" and pali.prompt_text(Request("x", None, "Q?")) == "<image>answer en Q?"


def test_cuda_oom_halves_the_batch_and_loses_nothing(llava, monkeypatch):
    reqs = requests(16)
    expected = llava.generate(reqs)
    real_generate = llava.model.generate
    sizes = []

    def flaky_generate(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_generate(**kwargs)

    monkeypatch.setattr(llava.model, "generate", flaky_generate)
    monkeypatch.setattr(llava, "_backoff", type(llava._backoff)(None, on_oom=lambda: None))
    assert llava.generate(reqs) == expected
    assert sizes == [16, 8, 4, 4, 4, 4] and llava._backoff.max_batch == 4


def test_tokenizer_without_single_token_yes_refuses_logit_scoring(tmp_path):
    path = build_tiny_llava(tmp_path / "noyes", corpus=["a photo of a cat", "the cat sat on the mat"] * 3,
                            vocab_size=300)
    HFAdapter(HFConfig(path=str(path), device="cpu"))                 # generation is fine
    with pytest.raises(DeemEvalError, match="scoring=generate"):
        HFAdapter(HFConfig(path=str(path), scoring="logits", device="cpu"))


def test_hub_id_not_available_offline_says_what_to_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "HF_HOME", str(tmp_path))
    with pytest.raises(DeemEvalError) as err:
        HFAdapter(HFConfig(path="some-org/not-downloaded-vlm"))
    message = str(err.value)
    assert "hf download some-org/not-downloaded-vlm" in message and "huggingface-cli download" in message
    assert f"HF_HOME={tmp_path}" in message
    with pytest.raises(DeemEvalError, match="no such checkpoint directory"):
        HFAdapter(HFConfig(path=str(tmp_path / "missing-dir")))
    with pytest.raises(DeemEvalError, match="no config.json"):
        HFAdapter(HFConfig(path=str(tmp_path)))


def test_config_validation():
    with pytest.raises(ValueError, match="unknown preset"):
        HFConfig(preset="llava-9")
    with pytest.raises(ValueError):
        HFConfig(num_beams=0)


def test_half_precision_inputs_follow_the_model(tiny_llava):
    adapter = HFAdapter(HFConfig(path=str(tiny_llava), dtype="bfloat16", max_new_tokens=2, device="cpu",
                                 scoring="logits"))
    assert adapter.model.dtype == torch.bfloat16
    assert adapter.encode(requests(1))["pixel_values"].dtype == torch.bfloat16
    assert len(adapter.generate(requests(2))) == 2 and len(adapter.yes_probability(requests(2))) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batched_equals_single(tiny_llava):
    adapter = HFAdapter(HFConfig(path=str(tiny_llava), dtype="float32", device="cuda", max_new_tokens=6))
    reqs = requests(16)
    assert adapter.generate(reqs) == one_by_one(adapter, "generate", reqs)


def test_one_owner_for_the_answer_instruction(tiny_llava):
    """The split's own instruction wins over the preset's: never two instructions in one prompt."""
    from deem_eval.model_adapters.hf.prompting import has_answer_instruction

    adapter = HFAdapter(HFConfig(path=str(tiny_llava), preset="llava-1.5"))
    rvqa = Request("a", None, "Is tench the main object in this image? Please answer yes or no.")
    pope = Request("b", None, "Is there a dog in the image?")
    assert "single word or phrase" not in adapter.prompt_for(rvqa)
    assert adapter.prompt_for(rvqa).count("Please answer yes or no.") == 1
    assert "Is there a dog in the image?\nAnswer the question using a single word or phrase." in adapter.prompt_for(pope)
    explicit = HFAdapter(HFConfig(path=str(tiny_llava), preset="llava-1.5", prompt_suffix=" Be brief."))
    assert explicit.prompt_for(rvqa).count("Be brief.") == 1         # a suffix the user set is always added
    assert has_answer_instruction("Is it red? Please anwser yes or no")      # DEEM's spelling
    assert has_answer_instruction("Is it red? Answer the question using a single word or phrase.")
    assert not has_answer_instruction("Is there a cat? I am asking you to answer.")
