"""The restricted unpickler of private tests: hypothesis-built pickle programs never call anything, never escape."""

from __future__ import annotations

import builtins
import copyreg
import json
import os
import pickle
import struct
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import FUZZ, no_hang

from codetune.bench.problems import restricted_loads

CALLS: list[tuple] = []
TRAP = types.ModuleType("_codetune_trap")


def fire(*a: object, **k: object) -> str:
    CALLS.append((a, k))
    return "fired"


class Fire:
    def __init__(self, *a: object) -> None:
        CALLS.append(("init", a))

    def __setstate__(self, state: object) -> None:
        CALLS.append(("setstate", state))


for _obj in (fire, Fire):  # pickled by reference as _codetune_trap.fire / _codetune_trap.Fire
    _obj.__module__ = TRAP.__name__
    setattr(TRAP, _obj.__name__, _obj)
GLOBALS = [("_codetune_trap", "fire"), ("_codetune_trap", "Fire"), ("os", "system"), ("posix", "system"),
           ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "set"),
           ("__builtin__", "set"), ("subprocess", "Popen"), ("copyreg", "_reconstructor"), ("_codecs", "encode"),
           ("codetune.files", "atomic_write_text")]  # fmt: skip
EXT_CODE = 0x7E57
MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"codetune-unpickle-pwned-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def trap() -> object:
    sys.modules["_codetune_trap"] = TRAP
    copyreg.add_extension("_codetune_trap", "fire", EXT_CODE)
    yield
    copyreg.remove_extension("_codetune_trap", "fire", EXT_CODE)
    del sys.modules["_codetune_trap"]


def short_str(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


PLAIN_OPS = [b"(", b"N", b"\x88", b"\x89", b"K\x07", b"J\xff\xff\xff\xff", b"]", b"}", b")", b"\x8f", b"a", b"e",
             b"s", b"u", b"t", b"\x85", b"\x86", b"\x87", b"l", b"d", b"\x90", b"\x91", b"0", b"2", b"\x94",
             b"q\x01", b"h\x01", b"C\x02hi", b"Vtext\n", short_str("x")]  # fmt: skip
CALL_OPS = [
    b"R",
    b"b",
    b"o",
    b"\x81",
    b"\x92",
]  # REDUCE, BUILD, OBJ, NEWOBJ, NEWOBJ_EX: need something callable


@st.composite
def loader_op(draw: st.DrawFn) -> bytes:
    """One opcode that would fetch something callable, were the unpickler to allow it."""
    mod, name = draw(st.sampled_from(GLOBALS))
    kind = draw(st.sampled_from(["GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "PERSID", "BINPERSID"]))
    return {
        "GLOBAL": f"c{mod}\n{name}\n".encode(),
        "STACK_GLOBAL": short_str(mod) + short_str(name) + b"\x93",
        "INST": f"(S'touch {MARKER}'\ni{mod}\n{name}\n".encode(),
        "EXT1": b"\x82\x01",
        "EXT2": b"\x83" + struct.pack("<H", EXT_CODE),
        "PERSID": b"Pid\n",
        "BINPERSID": short_str("id") + b"Q",
    }[kind]


@FUZZ
@given(
    proto=st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]),
    ops=st.lists(
        st.sampled_from(PLAIN_OPS) | loader_op() | st.sampled_from(CALL_OPS), min_size=1, max_size=12
    ),
)
def test_random_pickle_programs_build_plain_data_or_are_refused(
    proto: bytes, ops: list[bytes], figures: Counter
) -> None:
    blob = proto + b"".join(ops) + b"."
    figures["inputs_tried"] += 1
    with no_hang(10):
        try:
            value = restricted_loads(blob)
        except pickle.UnpicklingError:
            figures["pickles_refused"] += 1
            value = None
    assert not CALLS and not MARKER.exists(), (blob, CALLS)
    assert is_plain(value), (blob, value)


def is_plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, bytes, bytearray)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(is_plain(k) and is_plain(v) for k, v in value.items())
    return False


class Evil:
    def __init__(self, target: object, args: tuple) -> None:
        self.target, self.args = target, args

    def __reduce__(self) -> tuple:
        return self.target, self.args


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_malicious_objects_are_refused_before_running(protocol: int, figures: Counter) -> None:
    payloads = [
        Evil(os.system, (f"touch {MARKER}",)),
        Evil(builtins.exec, (f"open({str(MARKER)!r}, 'w')",)),
        Evil(TRAP.fire, ("reduce",)),
        [1, {"nested": Evil(TRAP.fire, ("deep",))}],
        Fire(),  # a class instance: BUILD / NEWOBJ path
        {1, 2},  # even harmless globals (builtins.set under protocols 0-3) are refused
    ]
    CALLS.clear()  # Fire() above ran its __init__ here, in the test, not in the unpickler
    for obj in payloads:
        blob = pickle.dumps(obj, protocol=protocol)
        if protocol >= 4 and isinstance(obj, set):
            assert restricted_loads(blob) == obj  # protocol 4 has a SET opcode: plain data
            continue
        figures["inputs_tried"] += 1
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            restricted_loads(blob)
        figures["pickles_refused"] += 1
    assert not MARKER.exists() and not CALLS


def test_registered_extension_codes_are_refused(figures: Counter) -> None:
    """copyreg extension codes resolve to globals without a GLOBAL opcode; they still go through find_class."""
    for blob in (b"\x80\x02\x83" + struct.pack("<H", EXT_CODE) + short_str("x") + b"\x85R.",
                 b"\x80\x02\x84" + struct.pack("<i", EXT_CODE) + b")R."):  # fmt: skip
        figures["inputs_tried"] += 1
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global _codetune_trap.fire"):
            restricted_loads(blob)
        figures["pickles_refused"] += 1
    assert not CALLS


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@FUZZ
@given(value=plain, protocol=st.integers(3, pickle.HIGHEST_PROTOCOL))
def test_plain_data_round_trips(value: object, protocol: int, figures: Counter) -> None:
    figures["inputs_tried"] += 1
    assert restricted_loads(pickle.dumps(value, protocol=protocol)) == value


@FUZZ
@given(tests=st.lists(st.fixed_dictionaries({"input": st.text(), "output": st.text()}), max_size=4),
       protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))  # fmt: skip
def test_livecodebench_format_needs_no_global_under_any_protocol(
    tests: list, protocol: int, figures: Counter
) -> None:
    figures["inputs_tried"] += 1
    text = json.dumps(tests)
    assert restricted_loads(pickle.dumps(text, protocol=protocol)) == text
