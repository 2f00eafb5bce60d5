"""``graphctl worker GRAPH --runner NAME --listen HOST:PORT``: one runner's worker,
served over TCP to orchestrators whose runner lists this host in ``endpoints``.

    GRAPHCTL_WORKER_TOKEN=... graphctl worker graph.yaml --runner mlp --listen 0.0.0.0:7000

The Runnable loads first, then the port is bound (a TCP readiness probe is
exact) and ``graphctl: worker RUNNER listening on HOST:PORT`` is printed.
SIGTERM or Ctrl-C drains: no new connection or batch is taken, connected
orchestrators are told it is going away, the batches held are answered, then it
exits 0; a second signal exits at once (130), as ``graphctl serve`` does. A
non-loopback address without ``GRAPHCTL_WORKER_TOKEN`` refuses to start (exit 2):
anyone reaching the port could run the model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable

from orchestrator.cli._args import (
    add_log_level_argument,
    configure_logging,
    positive_float,
    positive_int,
)
from orchestrator.cli._config import add_override_arguments
from orchestrator.cli._serve import EXIT_FORCED
from orchestrator.compiling._validation import did_you_mean
from orchestrator.errors import GraphctlError
from runners.config import RunnerConfig, host_port, parse_endpoint
from runners.remote.host import DEFAULT_MAX_PENDING, WorkerHost
from runners.remote.protocol import DEFAULT_MAX_FRAME_BYTES, TOKEN_ENV, is_loopback, server_tls

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="serve one runner's worker over TCP, for orchestrators on other hosts",
        description="Load one runner of GRAPH and serve its batches over TCP "
        "(token in GRAPHCTL_WORKER_TOKEN).",
    )
    parser.add_argument("file", metavar="GRAPH", help="the graph file naming the runner")
    parser.add_argument("--runner", required=True, metavar="NAME", help="the runner to serve")
    parser.add_argument(
        "--listen", required=True, metavar="HOST:PORT", help="address to bind, e.g. 0.0.0.0:7000"
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="TLS certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="TLS private key (PEM)")
    parser.add_argument(
        "--max-pending",
        type=positive_int,
        default=DEFAULT_MAX_PENDING,
        help="batches held (running or waiting) before more are refused as busy "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--max-frame-mb",
        type=positive_float,
        default=DEFAULT_MAX_FRAME_BYTES / 2**20,
        help="largest frame an orchestrator may send, in MiB (default %(default)g)",
    )
    add_override_arguments(parser)
    add_log_level_argument(parser, "info")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    try:
        listen = parse_endpoint(args.listen, listen=True)
    except ValueError:
        return _usage(f"--listen {args.listen!r} must be HOST:PORT")
    token = os.environ.get(TOKEN_ENV, "")
    if not token and not is_loopback(listen.host):
        return _usage(
            f"--listen {args.listen}: a worker reachable from other hosts needs a token "
            f"in {TOKEN_ENV} (or listen on 127.0.0.1)"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        return _usage("--tls-cert and --tls-key go together")
    config = _runner(args)
    return asyncio.run(_serve(args, config, listen.host, listen.port, token))


def _usage(message: str) -> int:
    print(f"graphctl worker: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _drain_then_exit(drain: Callable[[], None]) -> Callable[[], None]:
    """The first SIGTERM/SIGINT drains; a second exits at once, the batches held
    unanswered (their orchestrators retry them elsewhere)."""
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            print("graphctl: second signal: exiting now", file=sys.stderr, flush=True)
            os._exit(EXIT_FORCED)
        drain()

    return on_signal


def _runner(args: argparse.Namespace) -> RunnerConfig:
    from orchestrator.compiling import apply_overrides, compile_file

    plan = apply_overrides(compile_file(args.file), args.config, args.set)
    config = plan.runners.get(args.runner)
    if config is None:
        known = ", ".join(sorted(plan.runners)) or "none"
        raise GraphctlError(
            f"graph {plan.name!r} has no runner {args.runner!r}"
            f"{did_you_mean(args.runner, list(plan.runners))} (runners: {known})"
        )
    return config


async def _serve(
    args: argparse.Namespace, config: RunnerConfig, host: str, port: int, token: str
) -> int:
    try:
        tls = server_tls(args.tls_cert, args.tls_key)
    except OSError as error:  # ssl.SSLError is an OSError
        raise GraphctlError(f"--tls-cert/--tls-key: {error}") from None
    worker = WorkerHost(
        config,
        token=token,
        tls=tls,
        max_pending=args.max_pending,
        max_frame_bytes=int(args.max_frame_mb * 2**20),
        dead_peer_timeout_s=config.remote.dead_peer_timeout_s,
    )
    loop = asyncio.get_running_loop()
    on_signal = _drain_then_exit(worker.drain)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    def listening(bound_host: str, bound_port: int) -> None:
        shown = host_port(bound_host, bound_port)
        secure = " with TLS" if tls is not None else ""
        print(
            f"graphctl: worker {config.name} listening on {shown}{secure}",
            flush=True,
        )

    try:
        await worker.serve(host, port, listening)
    except OSError as error:
        raise GraphctlError(f"cannot listen on {args.listen}: {error.strerror or error}") from None
    print(f"graphctl: worker {config.name} drained and stopped", flush=True)
    return 0
