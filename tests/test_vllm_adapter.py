"""The `vllm` adapter without vllm: its pure request building (against the hf adapter's prompts on tiny
checkpoints) and output mapping (on hand-built objects shaped like vLLM's RequestOutput / CompletionOutput /
Logprob, numbers checked against the hf adapter's logit scoring), its options, and the missing-vllm error."""

from __future__ import annotations

import importlib
import math
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from deem_eval.core.adapters import Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import format_options, parse_options, split_pairs
from deem_eval.model_adapters.generation import YesNoTokens, find_yes_no_tokens, yes_probability_from_logits
from deem_eval.model_adapters.hf import HFAdapter, HFConfig, loading
from deem_eval.model_adapters.vllm import VLLMAdapter, VLLMConfig, mapping
from deem_eval.model_adapters.vllm.adapter import INSTALL_HINT, _model_type
from tests.hf_tiny import CLASSES, make_images, single_torch_thread  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]


# ---- vLLM-shaped plain objects (fields as in vllm.sequence.Logprob, vllm.outputs.CompletionOutput/RequestOutput)
@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = "stop"


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = True


TOKENS = YesNoTokens(yes_ids=(3, 7, 11), no_ids=(4, 9), yes_tokens=("Yes", "yes", "ĠYes"),
                     no_tokens=("No", "no"))


def top_k(logits: torch.Tensor, k: int) -> dict[int, Logprob]:
    """What vLLM returns for one position with SamplingParams(logprobs=k): the top-k of log_softmax."""
    logp = torch.log_softmax(logits.float(), -1)
    values, ids = logp.topk(k)
    return {int(i): Logprob(float(v), rank=r + 1) for r, (v, i) in enumerate(zip(values, ids))}


def output(request_id: int, text: str, first: dict[int, Logprob] | None) -> RequestOutput:
    steps = None if first is None else [first, {5: Logprob(-0.1)}]
    return RequestOutput(str(request_id), "prompt", [CompletionOutput(0, text, [1, 2], None, steps)])


# ---- P(yes) from top logprobs ----------------------------------------------------------------------------
def test_yes_probability_equals_hf_logit_scoring_when_variants_are_in_top_k():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(50, generator=gen) * 2
        logits[list(TOKENS.yes_ids + TOKENS.no_ids)] += 12.0    # yes/no variants dominate, as in a yes/no answer
        hf = float(yes_probability_from_logits(logits[None], TOKENS)[0])
        top = top_k(logits, 8)
        assert set(TOKENS.yes_ids + TOKENS.no_ids) <= set(top)
        p, mass = mapping.yes_probability_from_top_logprobs(top, TOKENS)
        assert p == pytest.approx(hf, abs=1e-6)
        full = torch.softmax(logits, -1)[list(TOKENS.yes_ids + TOKENS.no_ids)].sum()
        assert mass == pytest.approx(float(full), abs=1e-6)


def test_yes_probability_by_hand():
    top = {3: Logprob(math.log(0.5)), 11: Logprob(math.log(0.1)), 4: Logprob(math.log(0.2)),
           20: Logprob(math.log(0.15))}
    p, mass = mapping.yes_probability_from_top_logprobs(top, TOKENS)
    assert p == pytest.approx(0.6 / 0.8)
    assert mass == pytest.approx(0.8)
    # plain floats are accepted as values (older/newer vLLM shapes)
    assert mapping.yes_probability_from_top_logprobs({k: v.logprob for k, v in top.items()}, TOKENS)[0] == \
        pytest.approx(0.75)


def test_truncated_top_k_renormalises_over_present_variants():
    logits = torch.zeros(40)
    logits[3], logits[4], logits[9] = 5.0, 4.0, -3.0    # "no" variant 9 falls outside the top 3
    p, _ = mapping.yes_probability_from_top_logprobs(top_k(logits, 3), TOKENS)
    assert p == pytest.approx(math.exp(5) / (math.exp(5) + math.exp(4)), abs=1e-6)
    hf = float(yes_probability_from_logits(logits[None], TOKENS)[0])
    assert abs(p - hf) < 0.01                          # the missing mass is small, so is the error


def test_one_sided_and_undefined():
    assert mapping.yes_probability_from_top_logprobs({3: Logprob(-0.2), 30: Logprob(-2.0)}, TOKENS)[0] == 1.0
    assert mapping.yes_probability_from_top_logprobs({9: Logprob(-0.2)}, TOKENS)[0] == 0.0
    p, mass = mapping.yes_probability_from_top_logprobs({30: Logprob(-0.01), 31: Logprob(-5.0)}, TOKENS)
    assert p is None and mass == 0.0
    assert mapping.yes_probability_from_top_logprobs({3: Logprob(-math.inf), 4: Logprob(-1.0)}, TOKENS)[0] == 0.0


# ---- output mapping --------------------------------------------------------------------------------------
def test_map_outputs_text_and_probabilities_in_request_order():
    probs = [0.9, 0.2, 0.55, 0.01, 0.7]
    outs = [output(100 + i, f"  answer {i}\n", {3: Logprob(math.log(p)), 4: Logprob(math.log(1 - p))})
            for i, p in enumerate(probs)]
    expected = mapping.map_outputs(outs, 5, TOKENS)
    assert [o.text for o in expected] == [f"answer {i}" for i in range(5)]
    assert [o.yes_prob for o in expected] == pytest.approx(probs)
    assert all(o.yes_no_mass == pytest.approx(1.0) for o in expected)
    rng = random.Random(0)
    for _ in range(5):                                 # whatever order vLLM hands them back in
        shuffled = outs[:]
        rng.shuffle(shuffled)
        assert mapping.map_outputs(shuffled, 5, TOKENS) == expected
    # ids continue across generate calls and are compared as integers ("99" < "100")
    mixed = [output(99, "first", None), output(100, "second", None), output(1000, "third", None)]
    assert [o.text for o in mapping.map_outputs(mixed[::-1], 3)] == ["first", "second", "third"]


def test_map_outputs_without_scoring_ignores_logprobs_and_checks_shape():
    outs = [output(0, "Yes", None), output(1, "No.", None)]
    assert mapping.map_outputs(outs, 2) == [mapping.MappedOutput("Yes"), mapping.MappedOutput("No.")]
    with pytest.raises(RuntimeError, match="2 outputs for 3 requests"):
        mapping.map_outputs(outs, 3)
    with pytest.raises(RuntimeError, match="duplicate request ids"):
        mapping.map_outputs([output(4, "a", None), output(4, "b", None)], 2)
    with pytest.raises(RuntimeError, match="SamplingParams\\(logprobs=K\\)"):
        mapping.map_outputs(outs, 2, TOKENS)
    empty = RequestOutput("0", "p", [])
    with pytest.raises(RuntimeError, match="no completion"):
        mapping.map_outputs([empty], 1)


def test_non_integer_ids_keep_the_given_order():
    outs = [output(0, "a", None), output(1, "b", None)]
    outs[0].request_id, outs[1].request_id = "req-b", "req-a"
    assert [o.text for o in mapping.map_outputs(outs, 2)] == ["a", "b"]


# ---- sampling and engine arguments -----------------------------------------------------------------------
def test_sampling_kwargs():
    assert mapping.sampling_kwargs("generate", max_new_tokens=128, logprobs=20) == \
        {"temperature": 0.0, "max_tokens": 128, "logprobs": None}
    assert mapping.sampling_kwargs("both", max_new_tokens=32, logprobs=20) == \
        {"temperature": 0.0, "max_tokens": 32, "logprobs": 20}
    assert mapping.sampling_kwargs("logits", max_new_tokens=32, logprobs=5, purpose="score") == \
        {"temperature": 0.0, "max_tokens": 1, "logprobs": 5}
    with pytest.raises(ValueError):
        mapping.sampling_kwargs("both", max_new_tokens=1, logprobs=1, purpose="other")


def test_engine_kwargs():
    kw = mapping.engine_kwargs(VLLMConfig(gpu_memory_utilization=0.6, max_num_seqs=32, logprobs=50),
                               "/models/llava", revision=None, bf16_supported=True)
    assert kw == {"model": "/models/llava", "dtype": "bfloat16", "trust_remote_code": False,
                  "gpu_memory_utilization": 0.6, "tensor_parallel_size": 1, "enforce_eager": False, "seed": 0,
                  "limit_mm_per_prompt": {"image": 1}, "max_logprobs": 50, "max_num_seqs": 32}
    kw = mapping.engine_kwargs(VLLMConfig(max_model_len=4096, dtype="checkpoint"), "org/name", revision="v1",
                               bf16_supported=False)
    assert (kw["dtype"], kw["revision"], kw["max_model_len"], kw["max_logprobs"]) == ("auto", "v1", 4096, 20)
    assert "max_num_seqs" not in kw
    assert mapping.vllm_dtype("auto", bf16_supported=False) == "float32"
    assert mapping.vllm_dtype("float16", bf16_supported=True) == "float16"


# ---- options -----------------------------------------------------------------------------------------------
def test_options_parse_from_key_value_pairs():
    cfg = parse_options(VLLMConfig, split_pairs([
        "path=/m", "scoring=both", "logprobs=10", "gpu-memory-utilization=0.5", "max_num_seqs=64",
        "max_model_len=none", "tensor_parallel_size=2", "prompt_suffix="]), what="model 'vllm'")
    assert (cfg.path, cfg.scoring, cfg.logprobs, cfg.gpu_memory_utilization, cfg.max_num_seqs, cfg.max_model_len,
            cfg.tensor_parallel_size, cfg.prompt_suffix) == ("/m", "both", 10, 0.5, 64, None, 2, "")
    for bad in (["logprobs=0"], ["gpu_memory_utilization=1.5"], ["max_num_seqs=0"], ["preset=llava-9"],
                ["scoring=beam"]):
        with pytest.raises(DeemEvalError):
            parse_options(VLLMConfig, split_pairs(bad), what="model 'vllm'")
    help_lines = "\n".join(format_options(VLLMConfig))
    assert "gpu_memory_utilization" in help_lines and "share of GPU memory" in help_lines


def test_adapter_class_follows_the_protocol_and_entry_point_target():
    module, _, attr = "deem_eval.model_adapters.vllm:VLLMAdapter".partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert cls is VLLMAdapter
    assert (cls.name, cls.needs_images, cls.Config) == ("vllm", True, VLLMConfig)
    for method in ("generate", "yes_probability", "prompt_for", "content_fingerprint"):
        assert callable(getattr(cls, method))
    from deem_eval.core.registry import MODELS
    if "vllm" in MODELS.names():                        # once pyproject.toml declares the entry point
        assert MODELS.get("vllm") is VLLMAdapter


def test_missing_vllm_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)      # `import vllm` now raises ImportError
    with pytest.raises(DeemEvalError) as info:
        VLLMAdapter(VLLMConfig(path="llava-hf/llava-1.5-7b-hf"))
    message = str(info.value)
    assert "pip install 'deem-eval[vllm]'; needs a CUDA GPU" in message and INSTALL_HINT in message


def test_import_is_lazy():
    code = ("import sys, deem_eval.model_adapters.vllm, deem_eval.model_adapters.vllm.mapping, deem_eval.model_adapters.vllm.gpu_check; "
            "assert 'vllm' not in sys.modules, 'vllm imported'; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_gpu_check_helpers():
    from deem_eval.model_adapters.vllm import gpu_check

    class _Split:
        samples = tuple(range(10))
    assert gpu_check.pick_samples(_Split(), 4) == [0, 2, 5, 7]
    assert gpu_check.pick_samples(_Split(), 20) == list(range(10))
    rows = [{"prompt_vllm": "a", "prompt_hf": "a", "p_vllm": 0.7, "p_hf": 0.69, "text_vllm": "Yes", "text_hf": "Yes"},
            {"prompt_vllm": "b", "prompt_hf": "b", "p_vllm": 0.49, "p_hf": 0.51, "text_vllm": "No", "text_hf": "Yes"}]
    summary = gpu_check.compare(rows, 0.05)
    assert summary["prompts_identical"] and summary["max_abs_p_diff"] == pytest.approx(0.02)
    assert (summary["verdict_agreement"], summary["text_agreement"]) == (0.5, 0.5)


# ---- requests: the hf adapter's prompts, images ---------------------------------------------------------
def questions() -> list[Request]:
    images = make_images(4)
    return [Request("q0", images[0], "Is there a dog in the image?", "dog"),
            Request("q1", images[1], "  Is cat the main object in this image? Please answer yes or no. ", "cat"),
            Request("q2", images[2], "Is there a {cup} in the image?", "cup"),   # braces stay literal
            Request("q3", images[3], "Is there a bus in the image?\n", "bus")]


OPTION_SETS = [
    {},
    {"preset": "none"},
    {"prompt_suffix": "\\nAnswer yes or no.", "system_prompt": "Be brief."},
    {"prompt_template": "{system}<<{image}>> Q: {question} A:", "system_prompt": "S"},
    {"use_chat_template": False, "preset": "llava-1.5"},
    {"max_new_tokens": 7, "preset": "qwen2-vl"},
]


@pytest.fixture(scope="module")
def checkpoints(tiny_llava, tiny_llava_no_template, tiny_paligemma):
    return {"llava": tiny_llava, "llava_no_template": tiny_llava_no_template, "pali": tiny_paligemma}


@pytest.mark.parametrize("model", ["llava", "llava_no_template", "pali"])
@pytest.mark.parametrize("options", range(len(OPTION_SETS)))
def test_requests_use_the_hf_adapters_prompts(checkpoints, model, options):
    path = str(checkpoints[model])
    opts = OPTION_SETS[options]
    hf = HFAdapter(HFConfig(path=path, device="cpu", **opts))
    checkpoint = loading.resolve_checkpoint(path)
    processor = loading.load_processor(checkpoint, revision=None, trust_remote_code=False)
    model_type = _model_type(checkpoint, revision=None, trust_remote_code=False)
    assert model_type == hf.model_type
    setup = mapping.prompt_setup(VLLMConfig(path=path, **opts), processor, model_type, path)
    assert setup.prompt == hf.prompt and setup.preset == hf.preset
    for name in ("path", "preset", "system_prompt", "prompt_suffix", "prompt_template", "max_new_tokens",
                 "use_chat_template", "scoring", "revision", "trust_remote_code"):
        assert getattr(setup.config, name) == getattr(hf.config, name), name

    batch = questions()
    built = mapping.build_requests(batch, lambda q: setup.prompt.render(processor, q))
    assert [b["prompt"] for b in built] == [hf.prompt_for(r) for r in batch]
    assert len({b["prompt"] for b in built}) == len(batch)
    for b, r in zip(built, batch):
        assert set(b) == {"prompt", "multi_modal_data"} and set(b["multi_modal_data"]) == {"image"}
        image = b["multi_modal_data"]["image"]
        assert image.mode == "RGB" and image.size == r.image.size


def test_request_images_from_paths_and_missing(tmp_path):
    from PIL import Image

    Image.new("L", (12, 9), 7).save(tmp_path / "gray.png")
    built = mapping.build_requests([Request("a", tmp_path / "gray.png", "Q?")], lambda q: f"<image>{q}")
    assert built[0]["prompt"] == "<image>Q?"
    image = built[0]["multi_modal_data"]["image"]
    assert (image.mode, image.size) == ("RGB", (12, 9))
    with pytest.raises(DeemEvalError, match="b: the vllm adapter needs an image"):
        mapping.build_requests([Request("b", None, "Q?")], str)
    with pytest.raises(DeemEvalError, match="not found"):
        mapping.build_requests([Request("c", tmp_path / "missing.png", "Q?")], str)


def test_yes_no_ids_from_the_same_tokenizer_map_vllm_logprobs(tiny_llava):
    """End to end on real token ids: the tiny tokenizer's yes/no variants, logprobs laid out as vLLM would
    return them for the hf model's actual next-token logits, give the hf adapter's P(yes)."""
    hf = HFAdapter(HFConfig(path=str(tiny_llava), device="cpu", scoring="logits"))
    tokens = find_yes_no_tokens(hf.tokenizer)
    assert tokens == hf.yes_no
    batch = questions()
    logits = hf.next_token_logits(batch)
    expected = hf.yes_probability(batch)
    k = logits.shape[-1]                                 # full vocabulary: exact
    outs = [output(50 + i, "", top_k(row, k)) for i, row in enumerate(logits)][::-1]
    mapped = mapping.map_outputs(outs, len(batch), tokens)
    assert [o.yes_prob for o in mapped] == pytest.approx(expected, abs=1e-5)
