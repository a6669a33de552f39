"""Tiny random transformers checkpoints for tests (no network): built from small configs, saved with
`save_pretrained` next to a processor (a byte-level BPE tokenizer trained here, an image processor, a chat
template), and loaded back through `from_pretrained` exactly like a downloaded checkpoint.

Reusable by any test module: `build_tiny_llava(dir)`, `build_tiny_paligemma(dir)`, `build_tiny_clip(dir)`,
`train_tiny_tokenizer(...)`, `make_images(n)`. Weights are drawn from `derive_torch_generator`, so every
build is identical (no global RNG). Builds are cached per directory by the session-scoped fixtures in the
test modules (`tiny_models_dir` below is a helper for that).
"""

from __future__ import annotations

from pathlib import Path

from deem_eval.core.rng import derive_rng, derive_torch_generator

CLASSES = ("dog", "cat", "car", "tree", "boat", "person", "horse", "bird", "cup", "chair", "bus", "kite")

#: Sentences the tokenizer is trained on: the question form used in tests plus every casing of yes / no,
#: repeated so that each of them becomes one BPE token.
_CORPUS = (
    [f"Is there a {c} in the image?" for c in CLASSES]
    + [f"Is {c} the main object in this image? Please answer yes or no." for c in CLASSES]
    + ["a photo of a " + c + "." for c in CLASSES]
    + ["Yes", "No", "yes", "no", "YES", "NO", "Yes.", "No.", "Answer: yes", "Answer: no", "Answer: Yes",
       "Answer: No", "USER: ASSISTANT: system user assistant Answer the question using a single word or phrase."]
)

# A LLaVA-1.5-style template ("USER: <image>\n{text} ASSISTANT:"), written for these tests.
LLAVA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{{ ' ' }}"
    "{% else %}{{ m['role'].upper() + ': ' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{{ ' ' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def train_tiny_tokenizer(special_tokens: list[str], *, bos: str, eos: str, pad: str, vocab_size: int = 400,
                         corpus: list[str] | None = None):
    """A byte-level BPE tokenizer trained on `corpus` (default `_CORPUS`), as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((corpus or _CORPUS) * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad,
                                   additional_special_tokens=[t for t in special_tokens if t not in (bos, eos, pad)])


def randomize_(model, seed: int, *, std: float = 0.5) -> None:
    """Deterministic weights: every matrix ~ N(0, std) from a generator derived from (seed, name);
    biases 0, norm weights 1. A large std gives peaked next-token distributions (few near-ties)."""
    import torch

    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if param.ndim >= 2:
                gen = derive_torch_generator(seed, "tiny-weights", name)
                param.copy_(torch.randn(param.shape, generator=gen) * std)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)


def build_tiny_llava(out: Path, *, seed: int = 0, chat_template: bool = True, corpus: list[str] | None = None,
                     vocab_size: int = 400) -> Path:
    """LlavaForConditionalGeneration: CLIP vision tower (28 px, 14 px patches -> 4 image tokens) + Llama.
    `corpus`/`vocab_size` change the tokenizer (e.g. one with no single-token "yes")."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = train_tiny_tokenizer(["<pad>", "<s>", "</s>", "<image>"], bos="<s>", eos="</s>", pad="<pad>",
                               vocab_size=vocab_size, corpus=corpus)
    image_id = tok.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id, image_seq_length=4,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    randomize_(model, seed)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    image_processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE if chat_template else None)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_paligemma(out: Path, *, seed: int = 1) -> Path:
    """PaliGemmaForConditionalGeneration: SigLIP vision tower (28 px -> 4 image tokens) + 2-layer Gemma.
    Like the real PaliGemma checkpoints, the processor has no chat template (prefix prompts instead)."""
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    tok = train_tiny_tokenizer(["<pad>", "<bos>", "<eos>", "<image>"], bos="<bos>", eos="<eos>", pad="<pad>")
    image_processor = SiglipImageProcessor(size={"height": 28, "width": 28})
    # read by PaliGemmaProcessor; the image processor class does not declare it
    image_processor.image_seq_length = 4  # type: ignore[attr-defined]
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds <loc>/<seg> tokens
    image_id = tok.convert_tokens_to_ids("<image>")
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)   # PaliGemmaConfig sets its projection_dim (32)
    text = GemmaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = PaliGemmaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                             vocab_size=len(tok), projection_dim=32, hidden_size=32)
    model = PaliGemmaForConditionalGeneration(config).eval()
    randomize_(model, seed)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_clip(out: Path, *, seed: int = 2) -> Path:
    """CLIPModel (vision 28 px + text tower) with a CLIPProcessor around the tiny tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = train_tiny_tokenizer(["<pad>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                               eos="<|endoftext|>", pad="<pad>")
    config = CLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                         "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": tok.bos_token_id,
                         "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "image_size": 28, "patch_size": 14},
        projection_dim=16)
    model = CLIPModel(config).eval()
    randomize_(model, seed, std=0.3)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tok)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_images(n: int, *, size: int = 40, seed: int = 0) -> list:
    """`n` distinct random RGB images (PIL), deterministic."""
    from PIL import Image

    images = []
    for i in range(n):
        rng = derive_rng(seed, "tiny-image", i)
        images.append(Image.fromarray(rng.integers(0, 256, size=(size, size + i % 3 * 4, 3), dtype="uint8")))
    return images


# ---- shared fixtures (import them into a test module: `from tests.hf_tiny import tiny_llava`) -------------
def _built(tmp_path_factory, kind: str, builder, **kwargs) -> Path:
    """Build once per test session, shared by every module that imports the fixture."""
    out = tmp_path_factory.getbasetemp() / "hf-tiny" / kind
    if not (out / "config.json").is_file():
        builder(out, **kwargs)
    return out


def _fixture(kind: str, builder, **kwargs):
    import pytest

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory) -> Path:
        return _built(tmp_path_factory, kind, builder, **kwargs)

    fixture.__name__ = kind
    return fixture


tiny_llava = _fixture("tiny_llava", build_tiny_llava)
tiny_llava_no_template = _fixture("tiny_llava_no_template", build_tiny_llava, chat_template=False)
tiny_paligemma = _fixture("tiny_paligemma", build_tiny_paligemma)
tiny_clip = _fixture("tiny_clip", build_tiny_clip)


def make_yesno_split(directory: Path, n_images: int = 8, *, name: str = "pope-tiny", benchmark: str = "pope",
                     broken: tuple[int, ...] = (), candidates: tuple[str, ...] = CLASSES):
    """A POPE-shaped split: n_images random PNGs (sizes vary), two questions each (a yes and a no object)."""
    from deem_eval.core.splits import BuilderInfo, Sample, Split

    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, image in enumerate(make_images(n_images, seed=7)):
        path = images / f"img{i:03d}.png"
        if i in broken:
            path.write_bytes(b"not an image")
        else:
            image.save(path)
        for k, answer in enumerate(("yes", "no")):
            obj = CLASSES[(i + 5 * k) % len(CLASSES)]
            samples.append(Sample(f"{name}/{i:03d}{k}", path.name, f"Is there a {obj} in the image?", answer,
                                  {"subset": "random", "object": obj, "image_id": str(i)}))
    split = Split.create(name=name, benchmark=benchmark, samples=samples, image_root="images",
                         builder=BuilderInfo("test", {"n_images": n_images}, 0), candidates=list(candidates))
    return split.save(directory)


def _single_torch_thread():
    """Tiny models run fastest on one thread; on a shared 2-core machine extra OpenMP threads spin-wait
    (19x slower measured). Restores the previous setting afterwards."""
    import pytest

    @pytest.fixture(scope="module", autouse=True)
    def single_torch_thread():
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    return single_torch_thread


single_torch_thread = _single_torch_thread()


def llava_7b_towers():
    """CLIP ViT-L/14 at 336 px and Vicuna-7B v1.5, as llava-hf/llava-1.5-7b-hf's config.json (random weights)."""
    from transformers import CLIPVisionConfig, LlamaConfig

    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
    return vision, text
