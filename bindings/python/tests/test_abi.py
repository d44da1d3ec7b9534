"""The ctypes structs match resonance.h as the C compiler lays it out, and
every status code has its exception class."""

import ctypes
import json
import os
import subprocess

import pytest

import resonance
from resonance import _errors, _lib, _results

from conftest import abi_helper_path


@pytest.fixture(scope="module")
def layout():
    path = abi_helper_path()
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build the tree (cmake --build build) or set "
                    "RSN_PY_ABI_LAYOUT")
    return json.loads(subprocess.run([path], check=True, capture_output=True,
                                     text=True).stdout)


def test_abi_every_struct_is_checked(layout):
    assert set(_lib.STRUCTS) == set(layout) - {"constants"}


@pytest.mark.parametrize("name", sorted(_lib.STRUCTS))
def test_abi_struct_layout(layout, name):
    cls = _lib.STRUCTS[name]
    want = layout[name]
    got_fields = {f: getattr(cls, f).offset for f, _ in cls._fields_}
    assert list(got_fields) == list(want["fields"]), "fields differ (added, removed, renamed?)"
    assert got_fields == want["fields"]
    assert ctypes.sizeof(cls) == want["sizeof"]


def test_abi_constants(layout):
    c = layout["constants"]
    for name, value in c.items():
        if name in ("RSN_STATUS__COUNT", "sizeof_enum"):
            continue
        assert getattr(_lib, name) == value, name
    assert c["sizeof_enum"] == ctypes.sizeof(ctypes.c_int)  # enums are passed as c_int


def test_abi_every_status_has_a_class(layout):
    lib = _lib.load()
    for status in range(1, layout["constants"]["RSN_STATUS__COUNT"]):
        cls = resonance.BY_STATUS[status]
        assert issubclass(cls, resonance.Error)
        assert cls.status == status
        assert cls.status_name == lib.rsn_status_name(status).decode()
        assert getattr(resonance, cls.__name__) is cls


def test_version_and_library():
    assert resonance.version().split(".")[:2] == [str(x) for x in _lib.ABI_VERSION]
    assert resonance.version() == resonance.__version__
    assert os.path.samefile(resonance.library_path(), os.environ["RESONANCE_LIB"])
    assert resonance.isa() in ("scalar", "simde", "avx2", "avx512")
    assert resonance.sqlite_version().startswith("3.")


def test_error_from_status_carries_the_message():
    lib = _lib.load()
    e = _errors.from_status(lib, 10)
    assert isinstance(e, resonance.DimensionError) and isinstance(e, ValueError)
    assert e.status == 10 and e.status_name == "E_DIM"
    assert e.strerror == "vector dimension does not match the database"
    assert issubclass(resonance.NotFoundError, KeyError)
    assert str(resonance.NotFoundError("no node 'x'", status=9)) == "no node 'x' (E_NOTFOUND)"


def test_abi_hit_readers_agree_with_ctypes():
    # The two readers of rsn_hit arrays (struct for one query, a numpy dtype
    # for batches) must see the fields where ctypes (checked above) puts them.
    h = _lib.rsn_hit(0x1111, 0.25, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 0x7777, 0x8888)
    raw = bytes(h)
    (row,) = _results._HIT_STRUCT.iter_unpack(raw)
    want = tuple(getattr(h, f) for f, _ in _lib.rsn_hit._fields_)
    assert row == want
    arr = __import__("numpy").frombuffer(raw, dtype=_results._HIT)
    assert tuple(arr[0].tolist()) == want
