"""Shared fixtures for the DEEM tests: one deem-tiny model and diffusion teacher per session, and
single-threaded torch per test module (`pytestmark = pytest.mark.usefixtures("one_thread")`): tiny ops on a
shared 2-core machine are far faster without OpenMP thread contention; the thread count is restored after
the module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_deem():
    """A shared deem-tiny model: read-only (tests that change weights build their own)."""
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    return build_model(DEEM_TINY, seed=0)


@pytest.fixture(scope="session")
def tiny_teacher():
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY
    from deem_eval.model_adapters.deem.training.diffusion import build_teacher

    return build_teacher(DEEM_TINY.diffusion, seed=0)


def requests(n: int, *, size: int = 40, seed: int = 0):
    """n requests over n distinct random images with varied questions (different prompt lengths)."""
    from deem_eval.core.adapters import Request
    from tests.hf_tiny import CLASSES, make_images

    questions = [f"Is there a {CLASSES[i % len(CLASSES)]} in the image?" if i % 2 else
                 f"Is {CLASSES[i % len(CLASSES)]} the main object in this image? Please answer yes or no."
                 for i in range(n)]
    return [Request(f"q{i}", image, questions[i]) for i, image in enumerate(make_images(n, size=size, seed=seed))]
