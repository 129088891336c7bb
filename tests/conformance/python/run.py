"""Conformance runner for generated Python clients (see tests/conformance/README.md).

    CELL_CONFORMANCE_CLIENT=DIR python run.py cases tests/conformance/cases.json
    CELL_CONFORMANCE_CLIENT=DIR python run.py vectors tests/vectors

DIR holds the package ``conformance/`` written by ``cell generate conformance --language python``.
Cases run twice, through the blocking client and through the asyncio client (the blocking client
has no cancellation, so its cancellation cases go through an asyncio client of their own).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import struct
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.environ.get("CELL_CONFORMANCE_CLIENT", "."))

import conformance  # noqa: E402  (generated)
from conformance import _runtime as rt  # noqa: E402

Json = Any
passed = 0
failed = 0


def report(name: str, error: Optional[str]) -> None:
    global passed, failed
    line: Dict[str, Any] = {"name": name, "ok": error is None}
    if error is None:
        passed += 1
    else:
        failed += 1
        line["error"] = error
    print(json.dumps(line), flush=True)


def from_json(v: Json) -> Any:
    """A value in the JSON form of the vectors (plus ``$pattern``) as a Python value."""
    if isinstance(v, list):
        return [from_json(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            [(key, x)] = v.items()
            if key == "$bytes":
                return bytes.fromhex(x)
            if key == "$pattern":
                return bytes(i % 251 for i in range(x))
            if key == "$int":
                return int(x)
            if key == "$float":
                return float(x)
        return {k: from_json(x) for k, x in v.items()}
    return v


def same(a: Any, b: Any, strict: bool) -> bool:
    """Equality as the README says: by value; ``strict`` tells ints from floats and compares
    floats bit for bit (vectors); otherwise numbers compare by numeric value (cases)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if strict:
            if type(a) is not type(b):
                return False
            if isinstance(a, float):
                return struct.pack(">d", a) == struct.pack(">d", b) or (
                    math.isnan(a) and math.isnan(b)
                )
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        a = {k: x for k, x in a.items() if x is not None or strict}
        if list(a) != list(b) if strict else set(a) != set(b):
            return False
        return all(same(a[k], b[k], strict) for k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, strict) for x, y in zip(a, b))
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        return bytes(a) == bytes(b)
    return type(a) is type(b) and a == b


def short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 300 else text[:300] + "..."


# --- cases ----------------------------------------------------------------------------------------


def arguments(case: Dict[str, Any], suffix: str) -> Tuple[str, Dict[str, Any]]:
    python_name, fields = conformance.METHODS[case["method"]]
    request = from_json(case["request"])
    if "token" in request:
        request["token"] += suffix
    return python_name, {fields[k]: v for k, v in request.items()}


def judge(
    case: Dict[str, Any], result: Any, error: Optional[BaseException], elapsed_ms: float
) -> Optional[str]:
    """What is wrong with a call's outcome, or ``None``."""
    limit = case.get("max_elapsed_ms")
    if limit is not None and elapsed_ms > limit:
        return f"took {elapsed_ms:.0f} ms, over {limit} ms"
    expect = case["expect"]
    if "response" in expect:
        if error is not None:
            return f"expected a response, got {type(error).__name__}: {error}"
        if not same(result, from_json(expect["response"]), strict=False):
            return f"expected {short(from_json(expect['response']))}, got {short(result)}"
        return None
    want = expect["error"]
    if error is None:
        return f"expected {want['code']}, got the response {short(result)}"
    if isinstance(error, asyncio.CancelledError):
        code, message = "CANCELLED", None
    else:
        assert isinstance(error, rt.CellError)
        code, message = error.code, error.message
        if not isinstance(error, rt.ERRORS[code]):
            return f"{type(error).__name__} is not the class of {code}"
    if code != want["code"]:
        return f"expected {want['code']}, got {code}: {message}"
    if "message" in want and message != want["message"]:
        return f"expected the message {want['message']!r}, got {message!r}"
    return None


async def cancel_after(client: Any, name: str, kwargs: Dict[str, Any], ms: int) -> Any:
    task = asyncio.ensure_future(getattr(client, name)(**kwargs))
    await asyncio.sleep(ms / 1000)
    task.cancel()
    return await task


def run_sync(cases: List[Dict[str, Any]]) -> None:
    client = conformance.ConformanceClient()
    client.connect()
    for case in cases:
        name, kwargs = arguments(case, "-sync")
        if "timeout_ms" in case:
            kwargs["timeout"] = case["timeout_ms"] / 1000

        async def cancelled() -> Any:
            async with conformance.AsyncConformanceClient() as aio:
                return await cancel_after(aio, name, kwargs, case["cancel_after_ms"])

        start = time.monotonic()
        result, error = None, None
        try:
            if "cancel_after_ms" in case:
                result = asyncio.run(cancelled())
            else:
                result = getattr(client, name)(**kwargs)
        except (rt.CellError, asyncio.CancelledError) as e:
            error = e
        elapsed_ms = (time.monotonic() - start) * 1000
        report(f"sync: {case['name']}", judge(case, result, error, elapsed_ms))
    served = client.server_schema_hash
    report(
        "schema: the cell announces the hash the client was generated for",
        None if served == conformance.SCHEMA_HASH else f"got {served}",
    )
    client.close()
    strict = rt.CellClient("conformance", "sha256:other", strict_schema=True)
    try:
        strict.connect()
        problem: Optional[str] = "connected"
    except rt.FailedPreconditionError:
        problem = None
    except rt.CellError as e:
        problem = f"got {e.code}"
    strict.close()
    report("schema: a strict client of another schema fails with FAILED_PRECONDITION", problem)


async def run_async(cases: List[Dict[str, Any]]) -> None:
    async with conformance.AsyncConformanceClient() as client:
        for case in cases:
            name, kwargs = arguments(case, "-async")
            if "timeout_ms" in case:
                kwargs["timeout"] = case["timeout_ms"] / 1000
            start = time.monotonic()
            result, error = None, None
            try:
                if "cancel_after_ms" in case:
                    result = await cancel_after(client, name, kwargs, case["cancel_after_ms"])
                else:
                    result = await getattr(client, name)(**kwargs)
            except (rt.CellError, asyncio.CancelledError) as e:
                error = e
            elapsed_ms = (time.monotonic() - start) * 1000
            report(f"async: {case['name']}", judge(case, result, error, elapsed_ms))


# --- vectors --------------------------------------------------------------------------------------


def check_vector(group: str, v: Dict[str, Any]) -> Optional[str]:
    data = bytes.fromhex(v["hex"])
    expect = v.get("expect", "frame")
    if group == "msgpack.json":
        for hex_ in [v["hex"]] + ([v["alt_hex"]] if "alt_hex" in v else []):
            value = rt.decode(bytes.fromhex(hex_))
            if not same(value, from_json(v["meaning"]), strict=True):
                return f"decoded {short(value)}"
        if not v.get("decode_only"):
            encoded = rt.encode(from_json(v["meaning"])).hex()
            if encoded not in (v["hex"], v.get("alt_hex")):
                return f"encoded {encoded}"
        return None
    max_frame = v.get("max_frame", rt.DEFAULT_MAX_FRAME)
    buffer = rt.FrameBuffer(max_frame)
    buffer.push(data)
    if expect == "frame_too_large":
        try:
            buffer.next()
        except rt.ResourceExhaustedError:
            return None
        return "the reader accepted the length"
    body = buffer.next()
    if body is None or buffer.buffered != 0:
        return "the reader did not yield exactly one body"
    if expect == "malformed":
        try:
            rt.decode_frame(body)
        except rt.MalformedFrameError as e:
            want = v.get("call_id", 0)
            return None if e.call_id == want else f"call id {e.call_id}, expected {want}"
        return "the frame was accepted"
    if expect == "ignore":
        if rt.decode_frame(body) is not None:
            return "an unknown kind was not ignored"
        encoded = rt.frame_bytes(from_json(v["meaning"])).hex()
        return None if encoded == v["hex"] else f"encoded {encoded}"
    frame = rt.decode_frame(body)
    if frame is None or not same(frame, from_json(v["meaning"]), strict=True):
        return f"decoded {short(frame)}"
    if not v.get("decode_only"):
        encoded = rt.frame_bytes(rt.frame_to_list(from_json(v["meaning"]))).hex()
        if encoded != v["hex"]:
            return f"encoded {encoded}"
    if "max_frame" in v:
        stricter = rt.FrameBuffer(max_frame - 1)
        stricter.push(data)
        try:
            stricter.next()
            return "a reader one byte stricter accepted it"
        except rt.ResourceExhaustedError:
            pass
    return None


def run_vectors(directory: str) -> None:
    for group in ["msgpack.json", "frames.json", "ignored.json", "malformed.json"]:
        with open(os.path.join(directory, group)) as f:
            vectors = json.load(f)
        for v in vectors:
            try:
                error = check_vector(group, v)
            except Exception as e:  # a crash is a failure of that vector, not of the run
                error = f"{type(e).__name__}: {e}"
            report(f"{group}: {v['name']}", error)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("cases", "vectors"):
        sys.exit("usage: run.py cases CASES.json | run.py vectors VECTORS_DIR")
    if sys.argv[1] == "cases":
        with open(sys.argv[2]) as f:
            cases = json.load(f)["cases"]
        run_sync(cases)
        asyncio.run(run_async(cases))
    else:
        run_vectors(sys.argv[2])
    print(json.dumps({"summary": True, "passed": passed, "failed": failed}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
