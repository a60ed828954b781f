"""The Hugging Face hub, reachable or not: decided once per process, before the first hub download.

Without a network, huggingface_hub retries every request for ~45 s before it gives up, for each file it looks for.
When the hub cannot be reached, codetune switches the process to offline mode (what HF_HUB_OFFLINE=1 does), so files in
the local cache load at once and missing ones fail at once with a message that says why.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any
from urllib.parse import urlparse

_TRUE = {"1", "on", "yes", "true"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_checked: bool | None = None  # the answer, once asked: True = offline


def offline() -> bool:
    """True when this process is in Hugging Face offline mode (set by the user or by `go_offline_if_unreachable`)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def reachable(endpoint: str | None = None, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's host opens within `timeout` seconds (name lookup included)."""
    url = urlparse(endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)  # name lookups ignore socket timeouts
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def go_offline_if_unreachable() -> bool:
    """Before downloading from the hub: if it cannot be reached, put huggingface_hub, transformers and datasets in
    offline mode for this process and say so once on stderr. Returns True when the process is offline."""
    global _checked
    if offline():
        return True
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return False  # the connection would go through the proxy: a direct probe says nothing
    if _checked is None:
        _checked = not reachable()
        if _checked:
            set_offline()
            print(
                "note: the Hugging Face hub is unreachable; using the local cache only (HF_HUB_OFFLINE=1)",
                file=sys.stderr,
            )
    return _checked


def set_offline() -> None:
    """Offline mode for this process, including libraries that read the setting when they were imported."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets_config: Any = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True
        if hasattr(datasets_config, "HF_DATASETS_OFFLINE"):
            datasets_config.HF_DATASETS_OFFLINE = True


def failure(what: str, error: BaseException, fix: str, *, local: bool = False) -> str:
    """The end of a failed load's message: why (from the hub while offline, a missing file: not cached; else the
    library's first line) and `fix`."""
    if offline() and isinstance(error, OSError) and not local:
        return f"{what}: not in the local Hugging Face cache and the hub is unreachable (offline); {fix}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [""]
    # "Class validation error for validator ...:" says nothing without the line after it
    first = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    return f"{what} ({type(error).__name__}: {first[:200]}); {fix}"


def push_folder(folder: Any, repo_id: str, *, private: bool = False) -> str:
    """Upload a model folder to the hub repo `repo_id` (created if missing); returns the repo's URL."""
    from codetune.errors import CodetuneError

    if go_offline_if_unreachable():
        raise CodetuneError(
            f"{repo_id}: cannot push, the hub is unreachable (offline); the model is in {folder}"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message="Upload model merged by codetune"
        )
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise CodetuneError(f"{repo_id}: {failure('push failed', e, f'the model is in {folder}')}") from None
    return str(url)
