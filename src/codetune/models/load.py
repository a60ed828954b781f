"""One loader for every stage: model and tokenizer from a catalog name, GGUF file, local folder or hub id.

GGUF files are dequantized by transformers (`gguf_file=`). Because that is slow, the first load caches the
converted tokenizer and a dequantized safetensors copy under the codetune cache; later loads read that copy.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from codetune import paths
from codetune.errors import CodetuneError
from codetune.files import atomic_write_json, file_lock, read_json
from codetune.hub import failure, go_offline_if_unreachable
from codetune.models.assemble import pull
from codetune.models.catalog import get_entry
from codetune.models.source import ModelSource, resolve

READY = "codetune-ready.json"
MODEL_FIX = "use a local model folder, a .gguf file or a catalog name (codetune model list)"


def model_failure(what: str, error: BaseException, where: str | Path) -> str:
    """A local folder's failure is in its files; only a hub id can be missing from the cache."""
    if Path(where).is_dir():
        return failure(what, error, "check the files in that folder", local=True)
    return failure(what, error, MODEL_FIX)


def default_dtype(device: str | None = None) -> Any:
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def gguf_file_for(src: ModelSource, *, quiet: bool = False) -> Path | None:
    if src.kind == "catalog":
        return pull(get_entry(src.name or src.spec), quiet=quiet)
    if src.kind == "gguf":
        return src.path
    return None


def converted_dir(gguf: Path) -> Path:
    """Cache folder of one GGUF's converted copy, keyed by its path, size and mtime."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return paths.models_dir() / "converted" / f"{gguf.stem}-{key}"


def _check_gguf(gguf: Path) -> None:
    """Fail clearly on a file that is not a complete GGUF model (truncated downloads included)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(gguf), "r")
        tensors = list(reader.tensors)
        arch = reader.fields.get("general.architecture")
    except Exception as e:  # the gguf package raises bare ValueError/struct errors on truncated files
        raise CodetuneError(f"{gguf}: not a readable GGUF file ({type(e).__name__}: {e})") from None
    if arch is None or not tensors:
        raise CodetuneError(
            f"{gguf}: not a readable GGUF file (no architecture or no tensors in its metadata)"
        )
    size = gguf.stat().st_size
    end = max(int(t.data_offset) + int(t.n_bytes) for t in tensors)
    if end > size:
        raise CodetuneError(f"{gguf}: truncated GGUF file ({size:,} bytes, tensors need {end:,})")


def _convert(gguf: Path, out: Path, save_weights: bool) -> None:
    """Dequantize once and save a standard HF folder (fp32 safetensors + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "tokenizer" / "tokenizer.json").is_file():  # a tokenizer-only conversion came first
        tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    else:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tok.save_pretrained(out / "tokenizer")
    if save_weights:
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # The GGUF "quantizer" only dequantized: the weights are plain fp32 tensors now, so save them as such.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out / "model", safe_serialization=True)
        tok.save_pretrained(out / "model")
        del model
    atomic_write_json(out / READY, {"gguf": str(gguf), "weights": save_weights, "time": time.time()})


def _converted(out: Path, cache_weights: bool) -> bool:
    ready = out / READY
    return ready.is_file() and bool(read_json(ready).get("weights") or not cache_weights)


def hf_location(spec: str, *, quiet: bool = False, cache_weights: bool | None = None) -> tuple[str, dict]:
    """Where from_pretrained should read: (path or hub id, extra kwargs)."""
    src = resolve(spec)
    gguf = gguf_file_for(src, quiet=quiet)
    if gguf is None:
        if src.kind == "hub":
            go_offline_if_unreachable()
        return str(src.path or src.name), {"revision": src.revision} if src.revision else {}
    if cache_weights is None:
        cache_weights = os.environ.get("CODETUNE_CACHE_DEQUANTIZED", "1") != "0"
    out = converted_dir(gguf)
    if not _converted(out, cache_weights):
        _check_gguf(gguf)  # before the lock: a file that is not a model leaves nothing in the cache
        with file_lock(out):
            if not _converted(out, cache_weights):
                _convert(gguf, out, cache_weights)
    if (out / "model" / "config.json").is_file():
        return str(out / "model"), {}
    return str(gguf.parent), {"gguf_file": gguf.name, "tokenizer_dir": str(out / "tokenizer")}


def model_revision(spec: str) -> str | None:
    """Which weights `spec` names, once loaded: the hub commit of its snapshot in the local cache, or the catalog
    GGUF's sha256; None for a local folder or .gguf file (or a name that is not a model spec)."""
    try:
        src = resolve(spec)
    except CodetuneError:
        return None
    if src.kind == "catalog":
        return f"sha256:{get_entry(src.name or src.spec).sha256}"
    if src.kind != "hub":
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(src.name or src.spec, "config.json", revision=src.revision)
    if not isinstance(found, str) or Path(found).parent.parent.name != "snapshots":
        return None
    return Path(found).parent.name


def pinned_weights(spec: str, revision: str | None) -> str:
    """`spec` held to the hub commit a run recorded (`model_revision`), so a resumed run keeps its weights when the
    hub id's branch has moved on; other specs as they are."""
    if not revision or revision.startswith("sha256:"):
        return spec
    src = resolve(spec)
    return f"{spec}@{revision}" if src.kind == "hub" and src.revision is None else spec


def load_errors() -> tuple[type[Exception], ...]:
    """What from_pretrained raises for a model the user named wrongly: missing or unreachable files (OSError), a
    malformed or unknown config (ValueError), a config that fails transformers' validation."""
    from huggingface_hub.errors import StrictDataclassError

    return (OSError, ValueError, StrictDataclassError)


def load_tokenizer(spec: str, *, quiet: bool = False) -> Any:
    from transformers import AutoTokenizer

    where, extra = hf_location(spec, quiet=quiet, cache_weights=False)
    tok_dir = extra.get("tokenizer_dir", where)
    try:
        tok = AutoTokenizer.from_pretrained(tok_dir, revision=extra.get("revision"))
    except load_errors() as e:
        raise CodetuneError(f"{spec}: {model_failure('could not load the tokenizer', e, tok_dir)}") from None
    return _fix_padding(tok)


def _fix_padding(tok: Any) -> Any:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    spec: str, *, dtype: Any = None, device: str | None = None, quiet: bool = False
) -> tuple[Any, Any]:
    """Return (model, tokenizer), the model in eval mode on `device` (default: CUDA when present, else CPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or default_dtype(device)
    where, extra = hf_location(spec, quiet=quiet)
    tokenizer = load_tokenizer(spec, quiet=quiet)
    kwargs = {k: v for k, v in extra.items() if k in ("gguf_file", "revision")}
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    except load_errors() as e:
        raise CodetuneError(f"{spec}: {model_failure('could not load the model', e, where)}") from None
    model.to(device)
    model.eval()
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
