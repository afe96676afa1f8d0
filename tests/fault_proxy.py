"""A small HTTP/1.1 proxy that sits between an S3 client and a test server and breaks some requests.

Per request (deterministic sequence from ``seed``) it either forwards it, answers ``503 SlowDown``
or ``500 InternalError`` itself, resets the connection before forwarding, or forwards it and
then resets instead of answering (the server did the work; the client never hears back — a
lost response). Keep-alive is honoured; ``Expect: 100-continue`` is answered by the proxy so each
request is read whole before the dice are rolled. Loopback only; stops with ``stop()``.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections import Counter
from typing import Callable

FAULTS = ("slowdown", "internal", "reset_before", "reset_after")
_ERRORS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}
Rule = Callable[[str, str], "str | None"]


class FaultProxy:
    """``FaultProxy(upstream_port, fault_rate=0.2, seed=1).start()``; point the client at ``.endpoint``.

    ``rule(method, target)`` may return a fault name (or ``"pass"``) to decide a request itself;
    ``None`` leaves it to chance. ``counts`` holds how many requests got each outcome.
    """

    def __init__(self, upstream_port: int, *, fault_rate: float = 0.2, seed: int = 0,
                 rule: Rule | None = None) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.fault_rate = fault_rate
        self.rule = rule
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()

    @property
    def endpoint(self) -> str:
        assert self._listener is not None, "start() first"
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def faults(self) -> int:
        return sum(self.counts[name] for name in FAULTS)

    def start(self) -> FaultProxy:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
            self._sockets.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _decide(self, method: str, target: str) -> str:
        with self._lock:
            chance = self._random.random()
            choice = self._random.choice(FAULTS)
            decided = self.rule(method, target) if self.rule else None
            outcome = decided or (choice if chance < self.fault_rate else "pass")
            self.counts[outcome] += 1
            self.log.append((method, target, outcome))
            return outcome

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        upstream_reader = None
        reader = client.makefile("rb")
        try:
            while not self._stopping.is_set():
                request = _read_message(reader, client_side=client)
                if request is None:
                    return
                head, body, method, target = request
                outcome = self._decide(method, target)
                if outcome == "reset_before":
                    _reset(client)
                    return
                if outcome in _ERRORS:
                    client.sendall(_error_response(outcome, with_body=method != "HEAD"))
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=60)
                    upstream_reader = upstream.makefile("rb")
                    with self._lock:
                        self._sockets.add(upstream)
                upstream.sendall(head + body)
                response = _read_response(upstream_reader, method)
                if response is None:
                    return
                if outcome == "reset_after":
                    _reset(client)
                    return
                client.sendall(response[0])
                if response[1]:
                    return
        except OSError:
            return
        finally:
            reader.close()
            if upstream_reader is not None:
                upstream_reader.close()
            for sock in (client, upstream):
                if sock is not None:
                    _close(sock)
                    with self._lock:
                        self._sockets.discard(sock)


def _headers(lines: list[bytes]) -> dict[str, str]:
    result = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        result[name.strip().lower()] = value.strip()
    return result


def _read_head(reader) -> list[bytes] | None:
    first = reader.readline()
    while first in (b"\r\n", b"\n"):
        first = reader.readline()
    if not first:
        return None
    lines = [first]
    while True:
        line = reader.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line)


def _read_body(reader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = reader.readline()
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = reader.readline()
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += reader.read(size + 2)
    length = int(headers.get("content-length", "0") or 0)
    return reader.read(length) if length else b""


def _read_message(reader, client_side: socket.socket):
    lines = _read_head(reader)
    if lines is None:
        return None
    method, target = lines[0].decode("latin-1").split(" ")[:2]
    headers = _headers(lines[1:])
    if headers.get("expect", "").lower() == "100-continue":
        # Answer it here (Expect is not signed) so the body comes now and is forwarded whole.
        lines = [line for line in lines if not line.lower().startswith(b"expect:")]
        client_side.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = _read_body(reader, headers)
    return b"".join(lines) + b"\r\n", body, method, target


def _read_response(reader, method: str) -> tuple[bytes, bool] | None:
    """(raw response, connection closes after it)."""
    while True:
        lines = _read_head(reader)
        if lines is None:
            return None
        status = int(lines[0].split(b" ")[1])
        if status != 100:
            break
    headers = _headers(lines[1:])
    closes = headers.get("connection", "").lower() == "close"
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_body(reader, headers)
    else:
        body, closes = reader.read(), True
    return b"".join(lines) + b"\r\n" + body, closes


def _error_response(kind: str, *, with_body: bool) -> bytes:
    status, reason, code, message = _ERRORS[kind]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>fault-proxy</RequestId></Error>").encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body) if with_body else 0}\r\n\r\n").encode()
    return head + (body if with_body else b"")


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
