"""The `hf` model adapter: any Hugging Face transformers image-text-to-text model.

Importing this package is cheap; torch and transformers load when an adapter is built.
"""

from .adapter import HFAdapter, HFConfig
from .presets import PRESETS, Preset

__all__ = ["PRESETS", "HFAdapter", "HFConfig", "Preset"]
