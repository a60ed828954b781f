import os
import threading
import time

import pytest

from codetune.bench.frames import recv, send


def test_a_frame_round_trips_a_header_and_a_blob_larger_than_the_pipe():
    r, w = os.pipe()
    blob = bytes(range(256)) * 20_000  # 5 MB: more than a pipe holds, so the writer blocks while we read
    writer = threading.Thread(target=send, args=(w, {"op": "run", "timeout": 1.5}, blob))
    writer.start()
    head, got = recv(r, time.monotonic() + 30)
    writer.join()
    assert head == {"op": "run", "timeout": 1.5}
    assert got == blob
    send(w, {"ready": True})
    assert recv(r) == ({"ready": True}, b"")
    os.close(r)
    os.close(w)


def test_a_silent_pipe_times_out_and_a_closed_one_ends():
    r, w = os.pipe()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv(r, time.monotonic() + 0.2)
    assert time.monotonic() - start < 5
    os.close(w)
    with pytest.raises(EOFError):
        recv(r)
    os.close(r)
