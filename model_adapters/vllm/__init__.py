"""The `vllm` model adapter: image-text-to-text models served by vLLM (generation and yes/no logprob scoring).

Importing this package is cheap and works without vllm installed: vllm (and torch) load when an adapter is
built. The pure request/output functions live in `mapping.py` and are tested without vllm.
"""

from .adapter import VLLMAdapter
from .config import VLLMConfig

__all__ = ["VLLMAdapter", "VLLMConfig"]
