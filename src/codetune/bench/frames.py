"""The sandbox's pipe protocol: length-prefixed frames of a JSON header and raw bytes (standard library only)."""

from __future__ import annotations

import json
import os
import select
import struct
import time


def send(fd: int, header: dict, blob: bytes = b"") -> None:
    head = json.dumps(header).encode()
    data = struct.pack(">II", len(head), len(blob)) + head + blob
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def recv(fd: int, deadline: float | None = None) -> tuple[dict, bytes]:
    """One frame; `TimeoutError` past `deadline` (a `time.monotonic()` value), `EOFError` when the pipe closes."""
    hlen, blen = struct.unpack(">II", _read_exact(fd, 8, deadline))
    head = json.loads(_read_exact(fd, hlen, deadline))
    return head, _read_exact(fd, blen, deadline) if blen else b""


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("sandbox worker did not answer in time")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("sandbox worker closed its pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
