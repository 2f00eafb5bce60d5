"""The TCP worker protocol: the frames of ``runners.codec`` (data only, never
pickle) with a handshake that proves both ends hold the same secret.

    orchestrator -> worker   ["hello", version, spec hash, client nonce]
    worker -> orchestrator   ["challenge", version, spec hash, worker nonce, worker proof]
                             | ["refused", cause, message]            (then closes)
    orchestrator -> worker   ["proof", orchestrator proof]
    worker -> orchestrator   ["welcome", load, {method: [batchable, batch_dim, stack, stream]}]
                             | ["refused", cause, message]            (then closes)

A proof is ``HMAC-SHA256(token, role | client nonce | worker nonce | spec hash)``
(the worker's spec hash): each end proves the token on the other's fresh nonce,
and the token never crosses the wire. Until the orchestrator's proof checks out,
the worker accepts frames of at most ``HELLO_LIMIT_BYTES``; until the worker's
proof and welcome check out, the orchestrator accepts at most
``WELCOME_LIMIT_BYTES``. Only the handshake is authenticated: later frames carry
no MAC, so off a trusted network the connection needs TLS. Then:

    orchestrator -> worker   ["call", batch id, method, [args], {kwargs}, [call contexts]]
                             | ["ping", n]
    worker -> orchestrator   ["ok", batch id, value] | ["error", batch id, type, message]
                             | ["busy", batch id, reason]   (not run: send it elsewhere)
                             | ["pong", n, load] | ["going_away"]   (draining)

A streaming method's batch (``runners.streaming``) answers in steps before its
reply, and the orchestrator may send frames naming the batch while it runs:

    worker -> orchestrator   ["chunk", batch id, [chunk or None per item]]
                             | ["end", batch id, item index]
                             | ["joined", batch id, items]   (it took a join)
    orchestrator -> worker   ["stop", batch id, item index]   (its caller went away)
                             | ["join", batch id, [args], {kwargs}]   (calls joining)
                             | [kind, batch id, ...]

The worker relays any frame ``[kind, batch id, ...]`` (a kind other than ``call``
and ``ping``) to the streaming batch it names, whatever the kind: the batch's
link reads it between steps as a worker process's does, and ignores a kind it
does not know. One naming a batch the connection no longer holds (it crossed the
batch's end) is dropped.

``load`` is how many batches the worker holds (running or waiting) for all its
orchestrators; the pool sends a batch to the idle connection of least load. The call
contexts are those of a worker process's call frame (``runners.call_context``: each
call's request id and trace parent, ``[]`` when none has any); the worker binds
them as log fields and links its batch span to them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from runners.config import RunnerConfig

PROTOCOL_VERSION = 1
HELLO_LIMIT_BYTES = 4096  # what an unauthenticated peer can make us allocate
# What an orchestrator reads from a worker before both proofs and the welcome check
# out: the welcome carries the method table, a few dozen bytes per method.
WELCOME_LIMIT_BYTES = HELLO_LIMIT_BYTES + (1 << 16)
DEFAULT_MAX_FRAME_BYTES = 1 << 30
NONCE_BYTES = 32
TOKEN_ENV = "GRAPHCTL_WORKER_TOKEN"
# Init keys naming where a host keeps things, not what it runs: the model store's
# folder differs between a laptop and a container running the same model.
HOST_LOCAL_INIT = frozenset({"store"})

# Refusal causes, each a configuration error on the orchestrator's side.
VERSION, SPEC, TOKEN = "protocol version", "runner spec", "token"


def runner_spec(config: RunnerConfig) -> dict[str, Any]:
    """What must agree between an orchestrator and a worker: the class and its init
    (a model runner's init names its model and version)."""
    init = {k: v for k, v in config.init.items() if k not in HOST_LOCAL_INIT}
    return {"runnable": config.runnable, "init": init}


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A short stable hash of a runner spec (sorted JSON), shown in errors."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(spec: Mapping[str, Any]) -> str:
    """A runner spec as a user reads it in an error message."""
    return f"{spec['runnable']} init={json.dumps(spec['init'], sort_keys=True, default=str)}"


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: str, role: str, client_nonce: bytes, worker_nonce: bytes, spec: str) -> bytes:
    """What ``role`` (``worker`` or ``orchestrator``) sends to prove it holds ``token``."""
    message = b"|".join((role.encode(), client_nonce, worker_nonce, spec.encode()))
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


def proof_matches(expected: bytes, received: Any) -> bool:
    return isinstance(received, bytes) and hmac.compare_digest(expected, received)


def is_loopback(host: str) -> bool:
    """``host`` is this machine alone (``localhost`` or a loopback address): what may
    go without a token, or be load-tested without asking."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tune_socket(sock: socket.socket, dead_peer_timeout_s: float) -> None:
    """No Nagle delay; keepalive probes and a user timeout so that a peer gone silent
    (host down, cable cut) is noticed within ``dead_peer_timeout_s``, not minutes."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    interval = max(1, int(dead_peer_timeout_s / 3))
    for name, value in (
        ("TCP_KEEPIDLE", interval),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", max(1, int(dead_peer_timeout_s * 1000))),
    ):
        option = getattr(socket, name, None)
        if option is not None:  # Linux has them all; others keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def client_tls(ca_file: str | None) -> ssl.SSLContext | None:
    """The orchestrator's TLS context: certificates checked against ``ca_file``."""
    if ca_file is None:
        return None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)


def server_tls(cert_file: str | None, key_file: str | None) -> ssl.SSLContext | None:
    """The worker's TLS context, from its certificate and key files (both or neither:
    ``graphctl worker`` checks they come together)."""
    if cert_file is None or key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def names_batch(message: Any) -> bool:
    """``message`` is ``[kind, batch id, ...]`` for a batch the worker holds: neither
    a call nor a heartbeat (``stop``, or another kind a streaming batch reads)."""
    return (
        isinstance(message, list)
        and len(message) >= 2
        and isinstance(message[0], str)
        and message[0] not in ("call", "ping")
        and isinstance(message[1], int)
        and not isinstance(message[1], bool)
    )


def is_message(message: Any, kind: str, length: int) -> bool:
    """``message`` is a list of ``length`` items starting with ``kind``."""
    return isinstance(message, list) and len(message) == length and message[0] == kind
