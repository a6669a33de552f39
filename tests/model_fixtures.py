"""The tiny-model fixtures every test module may ask for by name (registered in conftest.py), built once per
session: tiny Hugging Face checkpoints saved to disk, and deem-tiny with its diffusion teacher."""

from tests.deem_tiny import tiny_deem, tiny_teacher
from tests.hf_tiny import tiny_clip, tiny_llava, tiny_llava_no_template, tiny_paligemma

__all__ = ["tiny_clip", "tiny_deem", "tiny_llava", "tiny_llava_no_template", "tiny_paligemma", "tiny_teacher"]
