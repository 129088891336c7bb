"""Runtime of generated Cell clients: MessagePack frames over Unix sockets (wire protocol v1, see
docs/protocol.md in the Cell repository), a blocking client and an asyncio client, discovery
through the nucleus, and the errors. Generated packages import it as ``._runtime``.

Needs ``msgpack`` (``pip install msgpack``).
"""

from __future__ import annotations

import asyncio
import os
import socket as _socket
import struct
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Type

import msgpack  # type: ignore[import-untyped]

AGENT = "cell-py-generated/0.1.0"
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
"""Seconds a call may take unless the client or the call says otherwise."""

# --- errors ---------------------------------------------------------------------------------------

CODES: Dict[str, int] = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
"""Error code names and their wire numbers (gRPC's)."""


def code_from_number(n: int) -> str:
    """The name of wire code ``n``; numbers outside the table are ``UNKNOWN``."""
    for name, number in CODES.items():
        if number == n:
            return name
    return "UNKNOWN"


class CellError(Exception):
    """A failed call: ``code`` (a name such as ``NOT_FOUND``), ``message`` and optional
    ``details`` from the server. ``CellError.of`` builds the subclass of a code, so that callers
    can catch ``NotFoundError`` and the like."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code if code in CODES else "UNKNOWN"
        self.message = message
        self.details = details

    @property
    def code_number(self) -> int:
        """The code's wire number."""
        return CODES[self.code]

    @staticmethod
    def of(code: str, message: str, details: Any = None) -> "CellError":
        """An error of the subclass for ``code``."""
        return ERRORS.get(code, CellError)(code, message, details)


class CancelledError(CellError):
    """``CANCELLED``: the call was cancelled."""


class UnknownError(CellError):
    """``UNKNOWN``: the handler failed with something that is not a Cell error."""


class InvalidArgumentError(CellError):
    """``INVALID_ARGUMENT``: the request or a frame is invalid."""


class DeadlineExceededError(CellError):
    """``DEADLINE_EXCEEDED``: the deadline passed before the answer."""


class NotFoundError(CellError):
    """``NOT_FOUND``: an entity the call refers to does not exist."""


class AlreadyExistsError(CellError):
    """``ALREADY_EXISTS``: the entity the call would create exists already."""


class PermissionDeniedError(CellError):
    """``PERMISSION_DENIED``: the caller may not do this."""


class ResourceExhaustedError(CellError):
    """``RESOURCE_EXHAUSTED``: a limit was hit."""


class FailedPreconditionError(CellError):
    """``FAILED_PRECONDITION``: the cell is not in a state to do this (or the schema differs)."""


class AbortedError(CellError):
    """``ABORTED``: a concurrency conflict; retry the whole transaction."""


class OutOfRangeError(CellError):
    """``OUT_OF_RANGE``: a value past the valid range."""


class UnimplementedError(CellError):
    """``UNIMPLEMENTED``: no such method."""


class InternalError(CellError):
    """``INTERNAL``: a bug in the cell."""


class UnavailableError(CellError):
    """``UNAVAILABLE``: the cell cannot take the call now (not running, shutting down)."""


class DataLossError(CellError):
    """``DATA_LOSS``: unrecoverable data loss or corruption."""


class UnauthenticatedError(CellError):
    """``UNAUTHENTICATED``: the caller did not prove who it is."""


ERRORS: Dict[str, Type[CellError]] = {
    "CANCELLED": CancelledError,
    "UNKNOWN": UnknownError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "ABORTED": AbortedError,
    "OUT_OF_RANGE": OutOfRangeError,
    "UNIMPLEMENTED": UnimplementedError,
    "INTERNAL": InternalError,
    "UNAVAILABLE": UnavailableError,
    "DATA_LOSS": DataLossError,
    "UNAUTHENTICATED": UnauthenticatedError,
}
"""The error class of each code."""


class _NotProcessed(UnavailableError):
    """The cell provably did not process the call: safe to retry whatever the method."""


class MalformedFrameError(InvalidArgumentError):
    """A frame body that breaks the protocol; ``call_id`` is the id an ERROR answer carries."""

    def __init__(self, what: str, call_id: int = 0) -> None:
        super().__init__("INVALID_ARGUMENT", f"Malformed frame: {what}")
        self.call_id = call_id


# --- MessagePack and frames -----------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """``value`` as MessagePack: smallest integer forms, float64, bin for bytes."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"extension type {code} is not used in Cell")


def _check(value: Any, depth: int) -> None:
    if depth > 256:
        raise ValueError("value nests deeper than 256 levels")
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("map key is not a string")
            _check(item, depth + 1)
    elif isinstance(value, (msgpack.Timestamp, msgpack.ExtType)):
        raise ValueError("extension types are not used in Cell")


def decode(data: bytes) -> Any:
    """The one MessagePack value in ``data``; raises ``ValueError`` on anything else."""
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=_reject_ext, use_list=True
        )
    except ValueError:
        raise
    except Exception as e:  # ExtraData, FormatError, StackError, UnicodeDecodeError...
        raise ValueError(str(e) or type(e).__name__) from e
    _check(value, 0)
    return value


KINDS = ["HELLO", "REQUEST", "RESPONSE", "ERROR", "CANCEL", "PING", "PONG", "GOAWAY"]

Frame = Dict[str, Any]
"""A frame as a dict: ``kind`` (a name such as ``RESPONSE``) and the fields of its kind."""


def _u32(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF


def decode_frame(body: bytes) -> Optional[Frame]:
    """The frame in ``body``; ``None`` for a well-formed frame of an unknown kind (ignore it).
    Raises ``MalformedFrameError``."""
    try:
        v = decode(body)
    except ValueError as e:
        raise MalformedFrameError(f"body is not valid MessagePack ({e})") from e
    if not isinstance(v, list) or len(v) < 2:
        raise MalformedFrameError("body must be an array [kind, ...]")
    kind = v[0]
    if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind <= 2**53 - 1:
        raise MalformedFrameError("kind must be a non-negative integer")
    f = v + [None] * (6 - len(v)) if len(v) < 6 else v
    if kind == 0:
        info = f[2] if f[2] is not None else {}
        if not _u32(f[1]) or not isinstance(info, dict):
            raise MalformedFrameError("HELLO must be [0, version, info]")
        return {"kind": "HELLO", "version": f[1], "info": info}
    if kind == 1:
        if not _u32(f[1]) or f[1] == 0:
            raise MalformedFrameError("REQUEST id must be from 1 to 2^32-1")
        if not isinstance(f[2], str):
            raise MalformedFrameError("REQUEST method must be a string", f[1])
        if len(v) < 5 or not _u32(f[4]):
            raise MalformedFrameError("REQUEST timeout_ms must be a u32", f[1])
        frame: Frame = {
            "kind": "REQUEST",
            "id": f[1],
            "method": f[2],
            "payload": f[3],
            "timeout_ms": f[4],
        }
        if f[5] is not None:
            if not isinstance(f[5], dict) or not all(isinstance(x, str) for x in f[5].values()):
                raise MalformedFrameError("REQUEST metadata must map strings to strings", f[1])
            frame["metadata"] = f[5]
        return frame
    if kind == 2:
        if not _u32(f[1]) or len(v) < 3:
            raise MalformedFrameError("RESPONSE must be [2, id, payload]")
        return {"kind": "RESPONSE", "id": f[1], "payload": f[2]}
    if kind == 3:
        if not _u32(f[1]) or not _u32(f[2]) or not isinstance(f[3], str):
            raise MalformedFrameError("ERROR must be [3, id, code, message, details?]")
        frame = {"kind": "ERROR", "id": f[1], "code": f[2], "message": f[3]}
        if f[4] is not None:
            frame["details"] = f[4]
        return frame
    if kind in (4, 5, 6):
        if not _u32(f[1]):
            raise MalformedFrameError(f"{KINDS[kind]} must be [{kind}, id]")
        return {"kind": KINDS[kind], "id": f[1]}
    if kind == 7:
        if not _u32(f[1]):
            raise MalformedFrameError("GOAWAY must be [7, last_id, message]")
        return {"kind": "GOAWAY", "last_id": f[1], "message": f[2] if isinstance(f[2], str) else ""}
    return None


def frame_to_list(frame: Mapping[str, Any]) -> List[Any]:
    """The array body of a frame dict, optional fields left off when absent."""
    kind = frame["kind"]
    if kind == "HELLO":
        return [0, frame["version"], frame["info"]]
    if kind == "REQUEST":
        body = [1, frame["id"], frame["method"], frame["payload"], frame["timeout_ms"]]
        return body + ([frame["metadata"]] if "metadata" in frame else [])
    if kind == "RESPONSE":
        return [2, frame["id"], frame["payload"]]
    if kind == "ERROR":
        body = [3, frame["id"], frame["code"], frame["message"]]
        return body + ([frame["details"]] if "details" in frame else [])
    if kind == "GOAWAY":
        return [7, frame["last_id"], frame["message"]]
    return [KINDS.index(kind), frame["id"]]


def frame_bytes(body: List[Any]) -> bytes:
    """A frame body encoded behind its u32 big-endian length prefix."""
    data = encode(body)
    return struct.pack(">I", len(data)) + data


class FrameBuffer:
    """Splits a byte stream into frame bodies, refusing a length over ``max_frame`` from the
    prefix alone."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def push(self, data: bytes) -> None:
        """Adds bytes read from the stream."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a body."""
        return len(self._buf)

    def next(self) -> Optional[bytes]:
        """The next whole body, or ``None``; raises ``ResourceExhaustedError``."""
        if len(self._buf) < 4:
            return None
        (length,) = struct.unpack_from(">I", self._buf)
        if length > self.max_frame:
            raise ResourceExhaustedError(
                "RESOURCE_EXHAUSTED",
                f"Frame of {length} bytes is over the limit of {self.max_frame} bytes",
            )
        if len(self._buf) < 4 + length:
            return None
        body = bytes(self._buf[4 : 4 + length])
        del self._buf[: 4 + length]
        return body


# --- finding cells --------------------------------------------------------------------------------


def cell_home() -> str:
    """``$CELL_HOME``, else ``~/.cell``."""
    return os.environ.get("CELL_HOME") or os.path.join(os.path.expanduser("~"), ".cell")


def _usable_sockets(found: Any) -> List[str]:
    out: List[str] = []
    for instance in (found or {}).get("instances", []):
        if instance.get("health") not in ("healthy", "starting"):
            continue
        for endpoint in instance.get("endpoints", []):
            if endpoint.get("transport") == "uds" and isinstance(endpoint.get("address"), str):
                out.append(endpoint["address"])
    return out


def _nucleus_wanted(cell: str) -> bool:
    return cell != "nucleus" and os.environ.get("CELL_NUCLEUS") != "0"


def discover(cell: str, home: Optional[str] = None) -> List[str]:
    """Socket paths of the usable instances of ``cell`` that the nucleus knows; none when there
    is no nucleus."""
    home = home or cell_home()
    if not _nucleus_wanted(cell):
        return []
    try:
        nucleus = _Connection(os.path.join(home, "run", "nucleus.sock"), {"agent": AGENT}, 2.0)
    except CellError:
        return []
    try:
        return _usable_sockets(nucleus.call("discover", {"cell": cell, "all": True}, 2.0))
    except CellError:
        return []
    finally:
        nucleus.close()


async def discover_async(cell: str, home: Optional[str] = None) -> List[str]:
    """Like ``discover``, with asyncio."""
    home = home or cell_home()
    if not _nucleus_wanted(cell):
        return []
    try:
        nucleus = await _AsyncConnection.open(
            os.path.join(home, "run", "nucleus.sock"), {"agent": AGENT}, 2.0
        )
    except CellError:
        return []
    try:
        return _usable_sockets(await nucleus.call("discover", {"cell": cell, "all": True}, 2.0))
    except CellError:
        return []
    finally:
        await nucleus.close()


def _candidates(cell: str, home: str, found: List[str]) -> List[str]:
    return found + [os.path.join(home, "run", f"{cell}.sock")]


def _unreachable(cell: str, home: str, last: Optional[BaseException]) -> UnavailableError:
    return UnavailableError(
        "UNAVAILABLE",
        f"Cell '{cell}' is not running in {home} ({last}): start it with the same CELL_HOME, "
        "or pass socket=",
    )


def _error_of(frame: Frame) -> CellError:
    return CellError.of(code_from_number(frame["code"]), frame["message"], frame.get("details"))


# --- blocking client ------------------------------------------------------------------------------


class _Connection:
    """One blocking connection; one call at a time (a lock serialises callers)."""

    def __init__(self, path: str, info: Dict[str, Any], connect_timeout: float) -> None:
        self.path = path
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._buffer = FrameBuffer()
        self._next_id = 1
        self._lock = threading.Lock()
        self.closed = False
        self.draining = False
        self.peer_max_frame = DEFAULT_MAX_FRAME
        deadline = time.monotonic() + connect_timeout
        try:
            self._sock.settimeout(connect_timeout)
            self._sock.connect(path)
            self._send([0, 1, info])
            while True:
                frame = self._read(deadline)
                if frame["kind"] == "HELLO":
                    self.info: Dict[str, Any] = frame["info"]
                    break
                if frame["kind"] == "ERROR" and frame["id"] == 0:
                    raise _error_of(frame)
        except OSError as e:
            self.close()
            raise UnavailableError("UNAVAILABLE", f"Cannot reach {path}: {e}") from e
        except BaseException:
            self.close()
            raise
        max_frame = self.info.get("max_frame")
        if isinstance(max_frame, int) and max_frame > 0:
            self.peer_max_frame = max_frame

    def _send(self, body: List[Any]) -> None:
        data = frame_bytes(body)
        if len(data) - 4 > self.peer_max_frame:
            raise ResourceExhaustedError(
                "RESOURCE_EXHAUSTED",
                f"Frame of {len(data) - 4} bytes is over the cell's limit of "
                f"{self.peer_max_frame} bytes",
            )
        self._sock.sendall(data)

    def _read(self, deadline: Optional[float]) -> Frame:
        """The next known frame; raises ``socket.timeout`` at the deadline with no data lost."""
        while True:
            body = self._buffer.next()
            if body is not None:
                frame = decode_frame(body)
                if frame is not None:
                    return frame
                continue
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _socket.timeout("deadline")
                self._sock.settimeout(left)
            else:
                self._sock.settimeout(None)
            data = self._sock.recv(1 << 20)
            if not data:
                raise UnavailableError("UNAVAILABLE", f"Connection to {self.path} closed")
            self._buffer.push(data)

    def call(
        self,
        method: str,
        payload: Any,
        timeout: Optional[float],
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Any:
        with self._lock:
            if self.closed or self.draining:
                raise _NotProcessed("UNAVAILABLE", "The connection is closed")
            call_id = self._next_id
            self._next_id = 1 if call_id >= 0xFFFFFFFF else call_id + 1
            timeout_ms = 0 if not timeout else max(1, int(-(-timeout * 1000 // 1)))
            deadline = None if not timeout else time.monotonic() + timeout
            body = [1, call_id, method, payload, timeout_ms]
            if metadata:
                body.append(dict(metadata))
            try:
                self._send(body)
            except OSError as e:
                self.close()
                raise _NotProcessed("UNAVAILABLE", f"Cannot send to {self.path}: {e}") from e
            try:
                return self._wait(call_id, deadline)
            except _socket.timeout:
                self._cancel(call_id)
                raise DeadlineExceededError(
                    "DEADLINE_EXCEEDED", f"Call of {method} took over {timeout_ms} ms"
                ) from None
            except KeyboardInterrupt:
                self._cancel(call_id)
                raise
            except OSError as e:
                self.close()
                raise UnavailableError("UNAVAILABLE", f"Connection to {self.path} failed: {e}")
            except (MalformedFrameError, ResourceExhaustedError):
                self.close()
                raise

    def _wait(self, call_id: int, deadline: Optional[float]) -> Any:
        while True:
            try:
                frame = self._read(deadline)
            except UnavailableError:
                self.close()
                raise
            kind = frame["kind"]
            if kind == "RESPONSE" and frame["id"] == call_id:
                return frame["payload"]
            if kind == "ERROR" and frame["id"] in (call_id, 0):
                if frame["id"] == 0:
                    self.close()
                raise _error_of(frame)
            if kind == "PING":
                self._send([6, frame["id"]])
            if kind == "GOAWAY":
                self.draining = True
                if call_id > frame["last_id"]:
                    raise _NotProcessed("UNAVAILABLE", "The cell is shutting down")

    def _cancel(self, call_id: int) -> None:
        try:
            self._send([4, call_id])
        except OSError:
            self.close()

    def close(self) -> None:
        self.closed = True
        try:
            self._sock.close()
        except OSError:
            pass


class _Options:
    def __init__(
        self,
        cell: str,
        schema_hash: str,
        socket: Optional[str],
        home: Optional[str],
        timeout: Optional[float],
        strict_schema: bool,
        peer: Optional[str],
    ) -> None:
        self.cell = cell
        self.schema_hash = schema_hash
        self.socket = socket
        self.home = home or cell_home()
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.strict_schema = strict_schema
        self.peer = peer

    def hello(self) -> Dict[str, Any]:
        info: Dict[str, Any] = {
            "schema_hash": self.schema_hash,
            "max_frame": DEFAULT_MAX_FRAME,
            "agent": AGENT,
        }
        if self.peer is not None:
            info["peer"] = self.peer
        return info

    def check_schema(self, info: Mapping[str, Any]) -> None:
        served = info.get("schema_hash")
        if self.strict_schema and served != self.schema_hash:
            raise FailedPreconditionError(
                "FAILED_PRECONDITION",
                f"Cell '{self.cell}' serves schema {served}, this client was generated for "
                f"{self.schema_hash}: regenerate it with 'cell generate {self.cell}'",
            )

    def retryable(self, error: CellError, idempotent: bool, attempt: int, deadline: float) -> bool:
        if not isinstance(error, UnavailableError) or attempt >= 3:
            return False
        if not (idempotent or isinstance(error, _NotProcessed)):
            return False
        return time.monotonic() + 0.025 * 2.0**attempt < deadline


def _public(error: CellError) -> CellError:
    return UnavailableError(error.code, error.message) if isinstance(error, _NotProcessed) else error


class CellClient:
    """A blocking client of one cell; generated clients subclass it with typed methods. Not for
    concurrent use from several threads at once (calls are serialised)."""

    def __init__(
        self,
        cell: str,
        schema_hash: str,
        socket: Optional[str] = None,
        *,
        home: Optional[str] = None,
        timeout: Optional[float] = None,
        strict_schema: bool = False,
        peer: Optional[str] = None,
    ) -> None:
        self._options = _Options(cell, schema_hash, socket, home, timeout, strict_schema, peer)
        self._connection: Optional[_Connection] = None
        self.server_schema_hash: Optional[str] = None

    def connect(self) -> "CellClient":
        """Connects now rather than at the first call; returns the client."""
        self._connected()
        return self

    def _connected(self) -> _Connection:
        c = self._connection
        if c is not None and not c.closed and not c.draining:
            return c
        o = self._options
        paths = [o.socket] if o.socket else _candidates(o.cell, o.home, discover(o.cell, o.home))
        last: Optional[BaseException] = None
        for path in paths:
            try:
                c = _Connection(path, o.hello(), min(o.timeout or 5.0, 5.0))
            except CellError as e:
                last = e
                continue
            o.check_schema(c.info)
            self.server_schema_hash = c.info.get("schema_hash")
            self._connection = c
            return c
        raise _unreachable(o.cell, o.home, last)

    def call(
        self,
        method: str,
        payload: Any,
        *,
        timeout: Optional[float] = None,
        metadata: Optional[Mapping[str, str]] = None,
        idempotent: bool = False,
    ) -> Any:
        """Calls ``method`` with ``payload`` (a dict); what generated methods do."""
        timeout = self._options.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout if timeout else float("inf")
        attempt = 1
        while True:
            try:
                left = None if not timeout else max(0.001, deadline - time.monotonic())
                return self._connected().call(method, payload, left, metadata)
            except CellError as e:
                if not self._options.retryable(e, idempotent, attempt, deadline):
                    raise _public(e) from None
                time.sleep(0.025 * 2 ** (attempt - 1))
                attempt += 1

    def close(self) -> None:
        """Closes the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> "CellClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- asyncio client -------------------------------------------------------------------------------


class _AsyncConnection:
    """One asyncio connection; calls run concurrently, answers are routed by call id."""

    def __init__(self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.path = path
        self._reader = reader
        self._writer = writer
        self._buffer = FrameBuffer()
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._next_id = 1
        self.closed = False
        self.draining = False
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.info: Dict[str, Any] = {}
        self._hello: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._run())

    @staticmethod
    async def open(path: str, info: Dict[str, Any], timeout: float) -> "_AsyncConnection":
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise UnavailableError("UNAVAILABLE", f"Cannot reach {path}: {e}") from e
        c = _AsyncConnection(path, reader, writer)
        c._send([0, 1, info])
        try:
            c.info = await asyncio.wait_for(asyncio.shield(c._hello), timeout)
        except asyncio.TimeoutError:
            await c.close()
            raise UnavailableError("UNAVAILABLE", f"{path} did not answer HELLO") from None
        except BaseException:
            await c.close()
            raise
        max_frame = c.info.get("max_frame")
        if isinstance(max_frame, int) and max_frame > 0:
            c.peer_max_frame = max_frame
        return c

    def _send(self, body: List[Any]) -> None:
        data = frame_bytes(body)
        if len(data) - 4 > self.peer_max_frame:
            raise ResourceExhaustedError(
                "RESOURCE_EXHAUSTED",
                f"Frame of {len(data) - 4} bytes is over the cell's limit of "
                f"{self.peer_max_frame} bytes",
            )
        self._writer.write(data)

    async def _run(self) -> None:
        error: CellError = UnavailableError("UNAVAILABLE", f"Connection to {self.path} closed")
        try:
            while True:
                data = await self._reader.read(1 << 20)
                if not data:
                    break
                self._buffer.push(data)
                while (body := self._buffer.next()) is not None:
                    frame = decode_frame(body)
                    if frame is not None:
                        self._handle(frame)
        except CellError as e:
            error = e
        except (OSError, asyncio.CancelledError):
            pass
        self._fail(error)

    def _handle(self, frame: Frame) -> None:
        kind = frame["kind"]
        if kind == "HELLO" and not self._hello.done():
            self._hello.set_result(frame["info"])
        elif kind == "RESPONSE":
            future = self._pending.pop(frame["id"], None)
            if future is not None and not future.done():
                future.set_result(frame["payload"])
        elif kind == "ERROR":
            if frame["id"] == 0:
                raise _error_of(frame)
            future = self._pending.pop(frame["id"], None)
            if future is not None and not future.done():
                future.set_exception(_error_of(frame))
        elif kind == "PING":
            self._send([6, frame["id"]])
        elif kind == "GOAWAY":
            self.draining = True
            for call_id in [i for i in self._pending if i > frame["last_id"]]:
                future = self._pending.pop(call_id)
                if not future.done():
                    future.set_exception(_NotProcessed("UNAVAILABLE", "The cell is shutting down"))

    def _fail(self, error: CellError) -> None:
        self.closed = True
        if not self._hello.done():
            self._hello.set_exception(error)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._writer.close()

    async def call(
        self,
        method: str,
        payload: Any,
        timeout: Optional[float],
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Any:
        if self.closed or self.draining:
            raise _NotProcessed("UNAVAILABLE", "The connection is closed")
        call_id = self._next_id
        while True:
            self._next_id = 1 if self._next_id >= 0xFFFFFFFF else self._next_id + 1
            if call_id not in self._pending:
                break
            call_id = self._next_id
        timeout_ms = 0 if not timeout else max(1, int(-(-timeout * 1000 // 1)))
        body = [1, call_id, method, payload, timeout_ms]
        if metadata:
            body.append(dict(metadata))
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._send(body)
        self._pending[call_id] = future
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout or None)
        except asyncio.TimeoutError:
            self._cancel(call_id)
            raise DeadlineExceededError(
                "DEADLINE_EXCEEDED", f"Call of {method} took over {timeout_ms} ms"
            ) from None
        except asyncio.CancelledError:
            self._cancel(call_id)
            raise

    def _cancel(self, call_id: int) -> None:
        future = self._pending.pop(call_id, None)
        if future is not None and not future.done():
            future.cancel()
        if not self.closed:
            self._send([4, call_id])

    async def close(self) -> None:
        if not self.closed:
            self._fail(UnavailableError("UNAVAILABLE", "Client closed"))
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        try:
            await self._writer.wait_closed()
        except (OSError, Exception):
            pass


class AsyncCellClient:
    """An asyncio client of one cell; generated clients subclass it with typed ``async`` methods.
    Cancelling the task of a call (``task.cancel()``) sends CANCEL to the cell and raises
    ``asyncio.CancelledError``, as asyncio code expects."""

    def __init__(
        self,
        cell: str,
        schema_hash: str,
        socket: Optional[str] = None,
        *,
        home: Optional[str] = None,
        timeout: Optional[float] = None,
        strict_schema: bool = False,
        peer: Optional[str] = None,
    ) -> None:
        self._options = _Options(cell, schema_hash, socket, home, timeout, strict_schema, peer)
        self._connection: Optional[_AsyncConnection] = None
        self._lock: Optional[asyncio.Lock] = None
        self.server_schema_hash: Optional[str] = None

    async def connect(self) -> "AsyncCellClient":
        """Connects now rather than at the first call; returns the client."""
        await self._connected()
        return self

    async def _connected(self) -> _AsyncConnection:
        c = self._connection
        if c is not None and not c.closed and not c.draining:
            return c
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            c = self._connection
            if c is not None and not c.closed and not c.draining:
                return c
            o = self._options
            found = [o.socket] if o.socket else None
            paths = found or _candidates(o.cell, o.home, await discover_async(o.cell, o.home))
            last: Optional[BaseException] = None
            for path in paths:
                try:
                    c = await _AsyncConnection.open(path, o.hello(), min(o.timeout or 5.0, 5.0))
                except CellError as e:
                    last = e
                    continue
                try:
                    o.check_schema(c.info)
                except CellError:
                    await c.close()
                    raise
                self.server_schema_hash = c.info.get("schema_hash")
                self._connection = c
                return c
            raise _unreachable(o.cell, o.home, last)

    async def call(
        self,
        method: str,
        payload: Any,
        *,
        timeout: Optional[float] = None,
        metadata: Optional[Mapping[str, str]] = None,
        idempotent: bool = False,
    ) -> Any:
        """Calls ``method`` with ``payload`` (a dict); what generated methods do."""
        timeout = self._options.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout if timeout else float("inf")
        attempt = 1
        while True:
            try:
                left = None if not timeout else max(0.001, deadline - time.monotonic())
                return await (await self._connected()).call(method, payload, left, metadata)
            except CellError as e:
                if not self._options.retryable(e, idempotent, attempt, deadline):
                    raise _public(e) from None
                await asyncio.sleep(0.025 * 2 ** (attempt - 1))
                attempt += 1

    async def close(self) -> None:
        """Closes the connection."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def __aenter__(self) -> "AsyncCellClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = [
    "AGENT",
    "AsyncCellClient",
    "CellClient",
    "CellError",
    "CODES",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_TIMEOUT",
    "ERRORS",
    "FrameBuffer",
    "MalformedFrameError",
    "cell_home",
    "code_from_number",
    "decode",
    "decode_frame",
    "discover",
    "discover_async",
    "encode",
    "frame_bytes",
    "frame_to_list",
] + [cls.__name__ for cls in ERRORS.values()]

