from deem_eval.core import hub


def test_offline_flag_means_unreachable(monkeypatch):
    hub.hub_reachable.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hf_offline() and not hub.hub_reachable()
    hub.hub_reachable.cache_clear()


def test_a_closed_endpoint_is_unreachable_quickly(monkeypatch):
    hub.hub_reachable.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")     # discard port: nothing listens
    assert not hub.hub_reachable()
    hub.hub_reachable.cache_clear()


def test_locations_name_the_cache(monkeypatch):
    text = hub.hub_locations()
    assert "HF_HOME=" in text and "hub cache:" in text
