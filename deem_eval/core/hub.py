"""Facts about the Hugging Face hub on this machine, for loaders that must fail fast and clearly offline.

Without network, a hub download is retried for minutes before it fails; loaders therefore look in the
local cache first and ask `hub_reachable()` before downloading. It asks `huggingface_hub` itself (one
`model_info` request with a short timeout, through the hub client's own HTTP session), so it goes where a
download would go: HF_ENDPOINT, HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the hub's SSL settings. Any HTTP answer
below 500 (even 401 / 404 for the probe repository) means the hub is reachable; a connection error, a timeout,
a 5xx or a proxy's 407 means it is not. `hub_status()` says why, for error messages.
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


PROBE_REPO = "openai-community/gpt2"   # any public repo: only whether the hub answers matters


def hub_reachable(timeout: float = 3.0, repo: str | None = None) -> bool:
    """Whether the hub (HF_ENDPOINT, default huggingface.co) answers, asked through `huggingface_hub`."""
    return hub_status(timeout, repo) is None


@lru_cache(maxsize=8)
def hub_status(timeout: float = 3.0, repo: str | None = None) -> str | None:
    """None when the hub answers a `model_info(repo)` request within `timeout` seconds, else why not (one line).
    Cached per (timeout, repo); `hub_status.cache_clear()` (or `hub_reachable.cache_clear()`) forgets."""
    if hf_offline():
        return "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set"
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or None
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return _tcp_status(endpoint or "https://huggingface.co", timeout)
    where = endpoint or _default_endpoint()
    try:
        HfApi(endpoint=endpoint).model_info(repo or PROBE_REPO, timeout=timeout)
    except OfflineModeIsEnabled:
        return "huggingface_hub is in offline mode (HF_HUB_OFFLINE)"
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status is None or status >= 500 or status == 407:
            return f"{where} answered HTTP {status if status is not None else '(no status)'}{_proxy_note()}"
        return None                       # 401 / 403 / 404 ...: the hub is there, the probe repo is not ours
    except Exception as exc:  # noqa: BLE001 - connect errors, timeouts, SSL and proxy errors of the HTTP client
        return f"cannot reach {where} within {timeout:g} s ({type(exc).__name__}: {exc}){_proxy_note()}"
    return None


hub_reachable.cache_clear = hub_status.cache_clear  # type: ignore[attr-defined]  # tests and callers reset either


def _default_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except ImportError:  # pragma: no cover
        return "https://huggingface.co"


def _proxy_note() -> str:
    proxies = [f"{k}={v}" for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
               if (v := os.environ.get(k))]
    return f" (through proxy {proxies[0]})" if proxies else ""


def _tcp_status(endpoint: str, timeout: float) -> str | None:
    """Without huggingface_hub: one TCP connect to the endpoint (ignores proxies)."""
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc})"
