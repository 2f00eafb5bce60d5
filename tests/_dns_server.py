"""A tiny authoritative DNS server over UDP, for the ``dns:NAME:PORT`` tests: it
answers A queries from a table the test changes while it runs (TTL 0, so every
lookup sees the table as it is), NODATA for other types of a known name, and
NXDOMAIN for unknown names; ``failing`` makes it answer SERVFAIL, as a resolver
in trouble does.

    with DnsServer("10.213.7.1") as dns:
        dns.set("workers.test", ["10.213.7.11"])
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Mapping, Sequence

TYPE_A, CLASS_IN = 1, 1
RESPONSE, AUTHORITATIVE, RECURSION_DESIRED, RECURSION_AVAILABLE = 0x8000, 0x0400, 0x0100, 0x0080
SERVFAIL, NXDOMAIN = 2, 3


def answer(query: bytes, table: Mapping[str, Sequence[str]], failing: bool = False) -> bytes | None:
    """The reply to one query; ``None`` for what is not a single-question query."""
    if len(query) < 12:
        return None
    ident, flags, questions = struct.unpack("!3H", query[:6])
    if flags & RESPONSE or questions != 1:
        return None
    labels, offset = [], 12
    while offset < len(query) and query[offset]:
        length = query[offset]
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    end = offset + 5  # the root label, then type and class
    if end > len(query):
        return None
    qtype, qclass = struct.unpack("!2H", query[offset + 1 : end])
    addresses = table.get(".".join(labels).lower(), ())
    found = qtype == TYPE_A and qclass == CLASS_IN
    records = [
        struct.pack("!3HIH", 0xC00C, TYPE_A, CLASS_IN, 0, 4) + socket.inet_aton(address)
        for address in (addresses if found else ())
    ]
    reply_flags = RESPONSE | AUTHORITATIVE | RECURSION_AVAILABLE | (flags & RECURSION_DESIRED)
    reply_flags |= 0 if addresses else NXDOMAIN
    if failing:
        records, reply_flags = [], (reply_flags & ~0xF) | SERVFAIL
    header = struct.pack("!6H", ident, reply_flags, 1, len(records), 0, 0)
    return header + query[12:end] + b"".join(records)


class DnsServer:
    """Serves ``answer`` on ``host:port`` (UDP) from a thread until closed."""

    def __init__(self, host: str, port: int = 53) -> None:
        self._table: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.queries = 0
        self.failing = False  # answer SERVFAIL to everything
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.05)  # how soon close() is noticed
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    def set(self, name: str, addresses: Sequence[str]) -> None:
        """``name`` resolves to ``addresses`` from now on (none: NXDOMAIN)."""
        with self._lock:
            self._table[name.lower()] = list(addresses)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            with self._lock:
                reply = answer(query, self._table, self.failing)
            if reply is not None:
                self.queries += 1
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
