"""Facts about the Hugging Face hub on this machine, for loaders that must fail fast and clearly offline.

Without network, a hub download is retried for minutes before it fails; loaders therefore look in the
local cache first and ask `hub_reachable()` (one TCP connect with a short timeout) before downloading.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

_TRUE = {"1", "true", "yes", "on"}


def hf_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set: never touch the network."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return os.path.join(os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")


def hub_locations() -> str:
    """Where Hugging Face files live on this machine (for error messages)."""
    home = os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface"))
    try:
        from huggingface_hub import constants

        home = constants.HF_HOME
    except ImportError:  # pragma: no cover
        pass
    return f"HF_HOME={home} (hub cache: {hub_cache_dir()}; set HF_HOME or HF_HUB_CACHE to use another)"


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint (HF_ENDPOINT, default huggingface.co) accepts a TCP connection."""
    if hf_offline():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
