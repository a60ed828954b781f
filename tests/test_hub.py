"""Offline detection: an unreachable hub puts the process in offline mode once, so hub ids fail at once with a
message that says why and what to use instead (instead of ~45 s of retries per file)."""

from __future__ import annotations

import socket
import sys

import huggingface_hub.constants
import pytest

from codetune import hub
from codetune.errors import CodetuneError


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process that has not been put offline; every setting the module may change is restored after."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_checked", None)
    for var in hub._PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_reachable_opens_a_connection_and_fails_fast_on_a_closed_port() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        assert hub.reachable(f"http://127.0.0.1:{port}", timeout=2)
    finally:
        server.close()
    assert not hub.reachable(f"http://127.0.0.1:{port}", timeout=2)
    assert not hub.reachable("https://no-such-host.invalid", timeout=2)


def test_unreachable_hub_switches_the_process_offline_once(online, capsys) -> None:
    calls = []
    online.setattr(hub, "reachable", lambda: calls.append(1) or False)
    assert hub.go_offline_if_unreachable() and hub.go_offline_if_unreachable()
    assert calls == [1]  # asked once per process
    assert hub.offline() and huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert sys.modules["datasets.config"].HF_HUB_OFFLINE is True
    assert capsys.readouterr().err.count("hub is unreachable") == 1


def test_reachable_hub_changes_nothing(online) -> None:
    online.setattr(hub, "reachable", lambda: True)
    assert not hub.go_offline_if_unreachable()
    assert not hub.offline() and huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_behind_a_proxy_nothing_is_probed(online) -> None:
    online.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    online.setattr(hub, "reachable", lambda: pytest.fail("probed"))
    assert not hub.go_offline_if_unreachable() and not hub.offline()


def test_hub_model_that_is_not_cached_fails_with_the_reason_and_the_fix(online) -> None:
    from codetune.models import load_tokenizer

    online.setattr(hub, "reachable", lambda: False)
    with pytest.raises(CodetuneError) as err:
        load_tokenizer("someone/not-cached-model")
    msg = str(err.value)
    assert msg.startswith(
        "someone/not-cached-model: could not load the tokenizer: not in the local Hugging Face"
    )
    assert "catalog name" in msg and "\n" not in msg
