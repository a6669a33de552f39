"""The `deem-tiny` tokenizer: a small byte-level BPE trained here on a fixed corpus (no download).

The corpus holds DEEM's prompt, the benchmarks' question forms, COCO / ImageNet-style object names and
every casing of yes / no, so "yes" and "no" are single tokens (logit scoring needs that). Training on the
same corpus gives the same vocabulary every time; a checkpoint also stores its tokenizer files, so a saved
deem-tiny model never depends on retraining.
"""

from __future__ import annotations

from functools import lru_cache

from .config import PromptConfig

BOS, EOS, UNK = "<s>", "</s>", "<unk>"

_OBJECTS = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic", "light", "fire", "hydrant", "stop", "sign", "parking", "meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports", "ball", "kite", "baseball", "bat", "glove", "skateboard", "surfboard", "tennis", "racket", "bottle", "wine", "glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot", "dog", "pizza", "donut", "cake", "chair", "couch", "potted", "plant", "bed", "dining", "table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell", "phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy", "hair", "drier", "toothbrush", "circle", "square", "triangle", "star", "heart", "tree", "house", "flower", "fish", "goldfish", "shark", "hen", "ostrich"]


def corpus() -> list[str]:
    prompt = PromptConfig()
    lines = [prompt.render("Is there a dog in the image?", ""), prompt.system, prompt.user, prompt.assistant]
    for name in _OBJECTS:
        lines += [f"Is there a {name} in the image?", f"Is there an {name} in the image?",
                  f"Is {name} the main object in this image? Please answer yes or no.",
                  f"Is {name} the main object in this image? Please anwser yes or no",
                  f"a photo of a {name}.", f"The answer is yes. The answer is no. {name}"]
    lines += ["yes", "no", "Yes", "No", "YES", "NO", " yes", " no", " Yes", " No", "yes.", "no."]
    return lines


# ---- DEEM-micro's tokenizer (preset tokenizer_source "micro") --------------------------------------------
# The question forms DEEM-micro is taught (micro/tasks.py) live here because its tokenizer is trained on them:
# building the preset's tokenizer must not need the training pipeline.

MAIN_OBJECT = "Is {class} the main object in this image? Please answer yes or no."
MAIN_OBJECT_ALT = "Is the main object in this image {a} {class}? Please answer yes or no."
THERE_IS = "Is there {a} {class} in the image?"
WHAT_IS = "What is the main object in this image?"


def article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def fill(template: str, name: str) -> str:
    return template.replace("{a}", article(name)).replace("{class}", name)


def micro_corpus() -> tuple[str, ...]:
    """Lines the DEEM-micro tokenizer is trained on: the default tiny corpus plus every category in every
    caption and question form, so each class name is a handful of tokens and yes/no stay single tokens."""
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, SCENE_NAMES

    lines = list(corpus())
    for name in CATEGORY_NAMES:
        for template in (MAIN_OBJECT, MAIN_OBJECT_ALT, THERE_IS, "a photo of {a} {class}.",
                         "{a} {class} on a plain background.", "{a} {class} in a scene."):
            lines.append(fill(template, name))
    for scene in SCENE_NAMES:
        lines.append(f"a {scene} scene with a cat, a dog and a tree.")
    lines.append(WHAT_IS)
    return tuple(lines)


@lru_cache(maxsize=4)
def _trained_json(vocab_size: int, lines: tuple[str, ...] | None = None) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[UNK, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus() if lines is None else list(lines), trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, tok.token_to_id(BOS))])
    return tok.to_str()


def tiny_tokenizer(vocab_size: int = 1024, lines: tuple[str, ...] | None = None):
    """A fresh transformers fast tokenizer (ids: <unk>=0, <s>=1, </s>=2, like Llama's), trained on the
    default corpus or on `lines` (DEEM-micro's, which adds SynthScenes captions and questions)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_trained_json(vocab_size, lines)),
                                  bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=UNK)
    tok.padding_side = "left"
    return tok
