"""distributed_env() under torchrun / accelerate / mpirun variables, and the hub check through huggingface_hub."""

from __future__ import annotations

from typing import ClassVar

import pytest

from deem_eval.core import hub
from deem_eval.core.errors import DeemEvalError
from deem_eval.run.runner import distributed_env

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK",
               "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key in LAUNCH_VARS or key.startswith("ACCELERATE_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_no_launcher_is_one_process(clean_env, capsys):
    assert distributed_env() == (0, 1)
    assert capsys.readouterr().err == ""


def test_torchrun(clean_env):
    clean_env.setenv("RANK", "1")
    clean_env.setenv("WORLD_SIZE", "2")
    assert distributed_env() == (1, 2)


@pytest.mark.parametrize("rank_var,world_var", [("PMI_RANK", "PMI_SIZE"),
                                                ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                                                ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE")])
def test_accelerate_cpu_with_mpirun(clean_env, rank_var, world_var):
    """`accelerate launch --cpu --mpirun_hostfile F --num_processes 2`: mpirun's variables, as accelerate reads."""
    clean_env.setenv("ACCELERATE_USE_CPU", "True")
    clean_env.setenv(rank_var, "1")
    clean_env.setenv(world_var, "2")
    assert distributed_env() == (1, 2)


def test_accelerate_simple_launcher_warns(clean_env, capsys):
    """What accelerate's simple launcher sets for `--cpu --num_processes 2` (one process, no rank variable)."""
    for key, value in {"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no",
                       "ACCELERATE_DYNAMO_BACKEND": "NO", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
                       "OMP_NUM_THREADS": "1"}.items():
        clean_env.setenv(key, value)
    assert distributed_env() == (0, 1)
    err = capsys.readouterr().err
    assert "accelerate launch" in err and "only this one process" in err and "torchrun --nproc_per_node" in err


def test_accelerate_single_process_is_quiet(clean_env, capsys):
    clean_env.setenv("ACCELERATE_USE_CPU", "True")
    clean_env.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert distributed_env() == (0, 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("env,match", [({"RANK": "2", "WORLD_SIZE": "2"}, "must be in"),
                                       ({"RANK": "1"}, "must be in"),
                                       ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x': not an integer"),
                                       ({"WORLD_SIZE": "0"}, "at least 1")])
def test_bad_rank_variables(clean_env, env, match):
    for key, value in env.items():
        clean_env.setenv(key, value)
    with pytest.raises(DeemEvalError, match=match):
        distributed_env()


def test_run_command_warns_at_start(clean_env, tmp_path, capsys):
    from deem_eval.cli import main
    from tests.conftest import make_split

    make_split(tmp_path / "split", n_images=1)
    for key, value in {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        clean_env.setenv(key, value)
    assert main(["run", "--model", "always-yes", "--split-dir", str(tmp_path / "split"), "--out",
                 str(tmp_path / "runs"), "--no-progress"]) == 0
    assert "only this one process" in capsys.readouterr().err


# ---- hub ------------------------------------------------------------------------------------------

@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    hub.hub_status.cache_clear()
    yield monkeypatch
    hub.hub_status.cache_clear()


class _FakeApi:
    calls: ClassVar[list] = []
    outcome: ClassVar[object] = None

    def __init__(self, endpoint=None, **_):
        self.endpoint = endpoint

    def model_info(self, repo, timeout=None):
        _FakeApi.calls.append((self.endpoint, repo, timeout))
        if isinstance(_FakeApi.outcome, BaseException):
            raise _FakeApi.outcome
        return object()


def _http_error(status: int):
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.errors import HfHubHTTPError

    response = httpx2.Response(status, request=httpx2.Request("GET", "https://hub.example/api/models/x"))
    return HfHubHTTPError(f"{status}", response=response)


def test_asks_huggingface_hub_with_the_timeout(online):
    import huggingface_hub

    online.setattr(huggingface_hub, "HfApi", _FakeApi)
    online.setenv("HF_ENDPOINT", "https://mirror.example")
    _FakeApi.calls, _FakeApi.outcome = [], None
    assert hub.hub_reachable(timeout=1.5, repo="org/model")
    assert _FakeApi.calls == [("https://mirror.example", "org/model", 1.5)]
    assert hub.hub_reachable(timeout=1.5, repo="org/model") and len(_FakeApi.calls) == 1    # cached


@pytest.mark.parametrize("status,reachable", [(404, True), (401, True), (407, False), (503, False)])
def test_http_answers(online, status, reachable):
    import huggingface_hub

    online.setattr(huggingface_hub, "HfApi", _FakeApi)
    _FakeApi.outcome = _http_error(status)
    assert hub.hub_reachable() is reachable
    if not reachable:
        assert f"HTTP {status}" in hub.hub_status()


def test_connection_error_names_the_proxy(online):
    import huggingface_hub

    online.setattr(huggingface_hub, "HfApi", _FakeApi)
    online.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    _FakeApi.outcome = ConnectionError("connection refused")
    reason = hub.hub_status(timeout=2.0)
    assert reason is not None and "within 2 s" in reason and "proxy.example:3128" in reason
    assert not hub.hub_reachable(timeout=2.0)


def test_offline_never_asks(online):
    import huggingface_hub

    online.setattr(huggingface_hub, "HfApi", _FakeApi)
    online.setenv("HF_HUB_OFFLINE", "1")
    _FakeApi.calls = []
    assert not hub.hub_reachable() and "HF_HUB_OFFLINE" in hub.hub_status()
    assert _FakeApi.calls == []
