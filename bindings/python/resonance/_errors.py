"""Exceptions: one class per rsn_status, all subclasses of resonance.Error.

Each carries the status (``.status``, ``.status_name``), the library's fixed
sentence (``.strerror``) and the detail of the failure from rsn_errmsg
(``.message``: names the id, both dimensions, the SQL error, ...).  Some also
derive from the matching built-in exception (DimensionError is a
ValueError, NotFoundError a KeyError, ...) so ordinary ``except`` clauses work.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class Error(Exception):
    """A call into libresonance failed.

    Attributes: status (int, the rsn_status value), status_name ("E_DIM"),
    strerror (the status's fixed sentence), message (the library's detail of
    this failure, from rsn_errmsg).  str(e) is the message and the name.
    """

    status: int = -1
    status_name: str = "?"

    def __init__(self, message: str, status: Optional[int] = None,
                 status_name: Optional[str] = None, strerror: str = ""):
        if status is not None:
            self.status = status
        if status_name is not None:
            self.status_name = status_name
        self.message = message
        self.strerror = strerror
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} ({self.status_name})"


class ClosedError(Error):
    """The database handle was closed (or is closing)."""
    status_name = "CLOSED"


class LibraryNotFoundError(Error, ImportError):
    """libresonance.so could not be found or loaded."""
    status_name = "NOLIB"


class NoMemoryError(Error, MemoryError):
    """Out of memory (E_NOMEM)."""
    status = 1
    status_name = "E_NOMEM"


class InvalidArgumentError(Error, ValueError):
    """Invalid argument (E_INVAL)."""
    status = 2
    status_name = "E_INVAL"


class CantOpenError(Error):
    """Cannot open the database file (E_CANTOPEN)."""
    status = 3
    status_name = "E_CANTOPEN"


class NotADatabaseError(Error):
    """The file is not a SQLite database (E_NOTDB)."""
    status = 4
    status_name = "E_NOTDB"


class BusyError(Error):
    """The database is locked by another connection (E_BUSY)."""
    status = 5
    status_name = "E_BUSY"


class ReadOnlyError(Error):
    """The database is read-only (E_READONLY)."""
    status = 6
    status_name = "E_READONLY"


class SchemaError(Error):
    """The schema does not match the resonance contract (E_SCHEMA)."""
    status = 7
    status_name = "E_SCHEMA"


class SQLError(Error):
    """SQLite error (E_SQL)."""
    status = 8
    status_name = "E_SQL"


class NotFoundError(Error, KeyError):
    """No such node (E_NOTFOUND)."""
    status = 9
    status_name = "E_NOTFOUND"


class DimensionError(Error, ValueError):
    """Vector dimension does not match the database (E_DIM)."""
    status = 10
    status_name = "E_DIM"


class NullBlobError(Error, ValueError):
    """Embedding is NULL (E_NULLBLOB)."""
    status = 11
    status_name = "E_NULLBLOB"


class BlobLengthError(Error, ValueError):
    """Embedding length is not a multiple of 4 bytes (E_BLOBLEN)."""
    status = 12
    status_name = "E_BLOBLEN"


class NonFiniteError(Error, ValueError):
    """Vector contains NaN or infinity (E_NONFINITE)."""
    status = 13
    status_name = "E_NONFINITE"


class ZeroVectorError(Error, ValueError):
    """Zero vector, norm below 1e-6 (E_ZERO)."""
    status = 14
    status_name = "E_ZERO"


class KError(Error, ValueError):
    """k must be at least 1 (E_K)."""
    status = 15
    status_name = "E_K"


class ParseError(Error, ValueError):
    """Malformed input, e.g. a filter (E_PARSE)."""
    status = 16
    status_name = "E_PARSE"


class DiskIOError(Error, OSError):
    """I/O error (E_IO)."""
    status = 17
    status_name = "E_IO"


class ISAError(Error):
    """Instruction set not available on this CPU (E_ISA)."""
    status = 18
    status_name = "E_ISA"


class StateError(Error):
    """Call not valid in the current state (E_STATE)."""
    status = 19
    status_name = "E_STATE"


class CorruptError(Error):
    """The database is corrupt (E_CORRUPT)."""
    status = 20
    status_name = "E_CORRUPT"


class ProblemsError(Error):
    """A check found problems (E_PROBLEMS)."""
    status = 21
    status_name = "E_PROBLEMS"


class ModelError(Error):
    """Embedding model does not match the database (E_MODEL)."""
    status = 22
    status_name = "E_MODEL"


class LimitError(Error):
    """Size exceeds what resonance can represent (E_LIMIT)."""
    status = 23
    status_name = "E_LIMIT"


class TierError(Error):
    """Search tier not built by this handle (E_TIER)."""
    status = 24
    status_name = "E_TIER"


class NetworkError(Error):
    """Cannot reach the embedding service (E_NETWORK)."""
    status = 25
    status_name = "E_NETWORK"


class EmbedTimeoutError(Error):
    """The embedding service did not answer in time (E_TIMEOUT)."""
    status = 26
    status_name = "E_TIMEOUT"


class RemoteError(Error):
    """The embedding service answered with an error (E_REMOTE)."""
    status = 27
    status_name = "E_REMOTE"


class ResponseError(Error):
    """The embedding service's answer is malformed (E_RESPONSE)."""
    status = 28
    status_name = "E_RESPONSE"



BY_STATUS: Dict[int, Type[Error]] = {
    cls.status: cls for cls in (
        NoMemoryError, InvalidArgumentError, CantOpenError, NotADatabaseError,
        BusyError, ReadOnlyError, SchemaError, SQLError,
        NotFoundError, DimensionError, NullBlobError, BlobLengthError,
        NonFiniteError, ZeroVectorError, KError, ParseError,
        DiskIOError, ISAError, StateError, CorruptError,
        ProblemsError, ModelError, LimitError, TierError,
        NetworkError, EmbedTimeoutError, RemoteError, ResponseError,
    )}

ERROR_NAMES = [cls.__name__ for cls in BY_STATUS.values()]


def from_status(lib, status: int) -> Error:
    """The exception for a failed call, with rsn_errmsg of this thread.
    Must be called right after the failing call, on the same thread, before
    any other resonance call (the message is per thread and per call)."""
    detail = lib.rsn_errmsg(None)
    detail = detail.decode("utf-8", "replace") if detail else ""
    name = lib.rsn_status_name(status).decode()
    sentence = lib.rsn_strerror(status).decode()
    cls = BY_STATUS.get(status, Error)
    if not detail or detail == "no error":
        detail = sentence
    return cls(detail, status=status, status_name=name, strerror=sentence)
