"""ctypes view of libresonance: finding the shared library, the structs of
resonance.h, and the prototypes of the calls the binding makes.

Everything here mirrors engine/include/resonance.h field for field; the
test tests/test_abi.py compares every size and offset with the C compiler's
(a tiny C program built beside the tests), so a struct that changes in the
header fails the test instead of corrupting memory.  The library is loaded
with ctypes.CDLL, which releases the GIL for the duration of every call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import sysconfig
import threading
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float,
                    c_int, c_int64, c_size_t, c_uint, c_uint32, c_void_p)
from typing import List, Optional

from ._errors import LibraryNotFoundError

# The library version this binding was written against: a library whose
# major.minor differs is refused (its structs may differ).
ABI_VERSION = (0, 1)

# ---- constants of resonance.h ---------------------------------------------
RSN_OPEN_READONLY = 0x01
RSN_OPEN_CREATE = 0x02
RSN_OPEN_NOLOAD = 0x04
RSN_OPEN_AUTO_REFRESH = 0x08
RSN_OPEN_NO_TRIGGERS = 0x10
RSN_OPEN_NO_HISTORY = 0x20
RSN_OPEN_CODES_ONLY = 0x40

RSN_SEARCH_MIN_SCORE = 0x01
RSN_SEARCH_NO_HYDRATE = 0x02
RSN_SEARCH_NO_REFRESH = 0x04
RSN_SEARCH_NO_RESCORE = 0x08

RSN_TIER__COUNT = 4
RSN_BLOB__COUNT = 7
RSN_MAX_DIMS_SEEN = 8
RSN_MODEL_MAX = 127

RSN_EDGES_OUT = 1
RSN_EDGES_IN = 2
RSN_EDGES_BOTH = 3

RSN_E_NOTFOUND = 9


# ---- structs ----------------------------------------------------------------
class rsn_open_opts(Structure):
    _fields_ = [
        ("flags", c_uint),
        ("dim", c_uint32),
        ("model", c_char_p),
        ("threads", c_int),
        ("load_threads", c_int),
        ("progress", c_void_p),      # rsn_progress_fn; the binding passes NULL
        ("progress_ctx", c_void_p),
        ("tiers", c_uint),
    ]


class rsn_node(Structure):
    _fields_ = [
        ("id", c_char_p),
        ("type", c_char_p),
        ("title", c_char_p),
        ("domain", c_char_p),
        ("layer", c_char_p),
        ("hash", c_char_p),
        ("meta", c_char_p),
        ("date", c_char_p),
        ("summary", c_char_p),
        ("embedding", c_void_p),     # const float *
        ("dim", c_uint32),
    ]


class rsn_search_params(Structure):
    _fields_ = [
        ("k", c_size_t),
        ("flags", c_uint),
        ("min_score", c_float),
        ("threads", c_int),
        ("filter", c_void_p),        # const rsn_filter *
        ("tier", c_int),             # rsn_tier
        ("oversample", c_uint),
    ]


class rsn_hit(Structure):
    # Pointers are read as integers (c_void_p) and copied with string_at.
    _fields_ = [
        ("id", c_void_p),
        ("score", c_float),
        ("type", c_void_p),
        ("title", c_void_p),
        ("domain", c_void_p),
        ("layer", c_void_p),
        ("date", c_void_p),
        ("meta", c_void_p),
        ("summary", c_void_p),
    ]


class rsn_results(Structure):
    _fields_ = [
        ("nq", c_size_t),
        ("k", c_size_t),
        ("count", c_void_p),         # size_t *
        ("hits", c_void_p),          # rsn_hit *
        ("search_ms", c_double),
        ("hydrate_ms", c_double),
        ("tier", c_int),             # rsn_tier
        ("approximate", c_int),
        ("candidates", c_size_t),
    ]


class rsn_refresh_info(Structure):
    _fields_ = [
        ("changed", c_int),
        ("full_reload", c_int),
        ("upserted", c_int64),
        ("removed", c_int64),
    ]


class rsn_health(Structure):
    _fields_ = [
        ("journal_mode", c_char * 16),
        ("busy_timeout_ms", c_int),
        ("mmap_size", c_int64),
        ("synchronous", c_int),
        ("foreign_keys", c_int),
        ("temp_store", c_int),
        ("drift", c_uint),
    ]


class rsn_vector_audit(Structure):
    _fields_ = [
        ("rows", c_int64),
        ("no_embedding", c_int64),
        ("valid", c_int64),
        ("by_verdict", c_int64 * RSN_BLOB__COUNT),
        ("dim", c_uint32),
        ("dim_from_meta", c_int),
        ("ndims", c_size_t),
        ("dims", c_uint32 * RSN_MAX_DIMS_SEEN),
        ("dims_count", c_int64 * RSN_MAX_DIMS_SEEN),
    ]


class rsn_stats(Structure):
    _fields_ = [
        ("nodes", c_int64),
        ("edges", c_int64),
        ("history", c_int64),
        ("vectors", rsn_vector_audit),
        ("db_bytes", c_int64),
        ("wal_bytes", c_int64),
        ("model", c_char * (RSN_MODEL_MAX + 1)),
        ("loaded", c_int),
        ("arena_rows", c_int64),
        ("arena_bytes", c_int64),
        ("load_ms", c_double),
        ("load_threads", c_int),
        ("isa", c_char_p),
        ("tiers", c_uint),
        ("tier_bytes", c_int64),
        ("tier_clipped_rows", c_int64),
        ("threads", c_int),
        ("health", rsn_health),
    ]


class rsn_check_report(Structure):
    _fields_ = [
        ("integrity_ok", c_int),
        ("integrity", c_char * 512),
        ("vectors", rsn_vector_audit),
        ("health", rsn_health),
        ("problems", c_int),
    ]


# Every struct the binding shares with C, by its C name (tests/test_abi.py).
STRUCTS = {cls.__name__: cls for cls in (
    rsn_open_opts, rsn_node, rsn_search_params, rsn_hit, rsn_results,
    rsn_refresh_info, rsn_health, rsn_vector_audit, rsn_stats,
    rsn_check_report)}


# ---- prototypes -------------------------------------------------------------
_vp = c_void_p
_PROTOTYPES = {
    # name: (restype, argtypes)
    "rsn_strerror": (c_char_p, [c_int]),
    "rsn_status_name": (c_char_p, [c_int]),
    "rsn_errmsg": (c_char_p, [_vp]),
    "rsn_version": (c_char_p, []),
    "rsn_sqlite_version": (c_char_p, []),
    "rsn_isa_active": (c_int, []),
    "rsn_isa_name": (c_char_p, [c_int]),
    "rsn_tier_name": (c_char_p, [c_int]),
    "rsn_tier_parse": (c_int, [c_char_p, POINTER(c_int)]),
    "rsn_tier_default_oversample": (c_uint, [c_int]),
    "rsn_blob_verdict_name": (c_char_p, [c_int]),
    "rsn_open_opts_init": (None, [POINTER(rsn_open_opts)]),
    "rsn_open": (c_int, [c_char_p, POINTER(rsn_open_opts), POINTER(_vp)]),
    "rsn_close": (None, [_vp]),
    "rsn_db_dim": (c_uint32, [_vp]),
    "rsn_upsert": (c_int, [_vp, POINTER(rsn_node)]),
    "rsn_update_meta": (c_int, [_vp, c_char_p, c_char_p]),
    "rsn_delete": (c_int, [_vp, c_char_p]),
    "rsn_begin": (c_int, [_vp]),
    "rsn_commit": (c_int, [_vp]),
    "rsn_rollback": (c_int, [_vp]),
    "rsn_get": (c_int, [_vp, c_char_p, c_int, POINTER(POINTER(rsn_node))]),
    "rsn_node_free": (None, [POINTER(rsn_node)]),
    "rsn_filter_parse": (c_int, [c_char_p, POINTER(_vp)]),
    "rsn_filter_where": (c_int, [c_char_p, POINTER(c_char_p), c_size_t, POINTER(_vp)]),
    "rsn_filter_ids": (c_int, [POINTER(c_char_p), c_size_t, POINTER(_vp)]),
    "rsn_filter_near": (c_int, [c_char_p, c_uint, c_char_p, c_int, POINTER(_vp)]),
    "rsn_filter_and": (c_int, [_vp, _vp, POINTER(_vp)]),
    "rsn_filter_or": (c_int, [_vp, _vp, POINTER(_vp)]),
    "rsn_filter_not": (c_int, [_vp, POINTER(_vp)]),
    "rsn_filter_free": (None, [_vp]),
    "rsn_search_params_init": (None, [POINTER(rsn_search_params)]),
    "rsn_search": (c_int, [_vp, _vp, c_uint32, POINTER(rsn_search_params), POINTER(_vp)]),
    "rsn_search_batch": (c_int, [_vp, _vp, c_size_t, c_uint32,
                                 POINTER(rsn_search_params), POINTER(_vp)]),
    "rsn_search_like": (c_int, [_vp, c_char_p, POINTER(rsn_search_params), POINTER(_vp)]),
    "rsn_results_free": (None, [_vp]),
    "rsn_refresh": (c_int, [_vp, POINTER(rsn_refresh_info)]),
    "rsn_reload": (c_int, [_vp]),
    "rsn_stats_get": (c_int, [_vp, POINTER(rsn_stats)]),
    "rsn_check": (c_int, [_vp, POINTER(rsn_check_report)]),
}


# ---- finding and loading the library ---------------------------------------
_NAMES = ("libresonance.so", "libresonance.so.0")


def _libdirs(prefix: str) -> List[str]:
    """Library directories under an installation prefix (lib, lib64 and the
    Debian multiarch directory, which `cmake --install` uses under /usr)."""
    dirs = [os.path.join(prefix, "lib")]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs.append(os.path.join(prefix, "lib", multiarch))
    dirs.append(os.path.join(prefix, "lib64"))
    return dirs


def candidates() -> List[str]:
    """The paths tried, in order: $RESONANCE_LIB (a file, or a directory
    holding libresonance.so), then beside this package, then the lib
    directories of the installation prefixes (sys.prefix, the base
    prefix, /usr/local, /usr), then the dynamic loader's own search
    (ctypes.util.find_library: ld.so.cache, LD_LIBRARY_PATH)."""
    out: List[str] = []
    env = os.environ.get("RESONANCE_LIB")
    if env:
        if os.path.isdir(env):
            out += [os.path.join(env, n) for n in _NAMES]
        else:
            out.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    out += [os.path.join(here, n) for n in _NAMES]
    prefixes = []
    for p in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        if p not in prefixes:
            prefixes.append(p)
    for p in prefixes:
        for d in _libdirs(p):
            out += [os.path.join(d, n) for n in _NAMES]
    return out


_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def load() -> ctypes.CDLL:
    """Load libresonance once (thread-safe) and return it.  Raises
    LibraryNotFoundError naming every path tried, or when the library's version
    is not the one this binding was written for."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried, errors = [], []
        env_set = bool(os.environ.get("RESONANCE_LIB"))
        lib = None
        for i, path in enumerate(candidates()):
            tried.append(path)
            if not os.path.exists(path):
                if i == 0 and env_set:
                    raise LibraryNotFoundError(
                        f"RESONANCE_LIB={os.environ['RESONANCE_LIB']!r}: no such file")
                continue
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                errors.append(f"{path}: {e}")
                if env_set and i == 0:
                    raise LibraryNotFoundError(f"RESONANCE_LIB={path!r} cannot be loaded: {e}")
        if lib is None:
            found = ctypes.util.find_library("resonance")
            if found:
                tried.append(found)
                try:
                    lib = ctypes.CDLL(found)
                except OSError as e:
                    errors.append(f"{found}: {e}")
        if lib is None:
            msg = ("libresonance.so not found.  Build it (cmake --build build) and set "
                   "RESONANCE_LIB=/path/to/libresonance.so, copy it beside the resonance "
                   "package, or install it (cmake --install build --prefix PREFIX).  Tried: "
                   + ", ".join(tried))
            if errors:
                msg += ".  Errors: " + "; ".join(errors)
            raise LibraryNotFoundError(msg)
        try:
            _bind(lib)
        except AttributeError as e:
            raise LibraryNotFoundError(f"{lib._name} is not libresonance ({e})")
        version = lib.rsn_version().decode()
        major_minor = tuple(int(x) for x in version.split(".")[:2])
        if major_minor != ABI_VERSION:
            raise LibraryNotFoundError(
                f"{lib._name} is libresonance {version}; this binding is for "
                f"{ABI_VERSION[0]}.{ABI_VERSION[1]}.x (its structs may differ)")
        _lib = lib
        return lib


def path() -> str:
    """The file the loaded library came from."""
    return load()._name
