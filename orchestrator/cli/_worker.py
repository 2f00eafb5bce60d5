"""``graphctl worker GRAPH --runner NAME --listen HOST:PORT``: one runner's worker,
served over TCP to orchestrators whose runner lists this host in ``endpoints``.

    GRAPHCTL_WORKER_TOKEN=... graphctl worker graph.yaml --runner mlp --listen 0.0.0.0:7000

The Runnable loads first, then the port is bound (a TCP readiness probe is
exact) and ``graphctl: worker RUNNER listening on HOST:PORT`` is printed.
SIGTERM or Ctrl-C drains: no new connection or batch is taken, connected
orchestrators are told it is going away, the batches held are answered, then it
exits 0. A non-loopback address without ``GRAPHCTL_WORKER_TOKEN`` refuses to
start (exit 2): anyone reaching the port could run the model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from orchestrator.cli._args import (
    add_log_level_argument,
    configure_logging,
    positive_float,
    positive_int,
)
from orchestrator.cli._config import add_override_arguments
from orchestrator.compiling._validation import did_you_mean
from orchestrator.errors import GraphctlError
from runners.config import RunnerConfig, parse_endpoint

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
        default=2,
        help="batches held (running or waiting) before more are refused as busy (default 2)",
    )
    parser.add_argument(
        "--max-frame-mb",
        type=positive_float,
        default=1024.0,
        help="largest frame an orchestrator may send, in MiB (default 1024)",
    )
    add_override_arguments(parser)
    add_log_level_argument(parser, "info")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    from runners.remote.protocol import TOKEN_ENV, is_loopback

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
    from runners.remote import WorkerHost
    from runners.remote.protocol import server_tls

    try:
        tls = server_tls(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise GraphctlError(f"--tls-cert/--tls-key: {error}") from None
    worker = WorkerHost(
        config,
        token=token,
        tls=tls,
        max_pending=args.max_pending,
        max_frame_bytes=int(args.max_frame_mb * 2**20),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.drain)

    def listening(bound_host: str, bound_port: int) -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        secure = " with TLS" if tls is not None else ""
        print(
            f"graphctl: worker {config.name} listening on {shown}:{bound_port}{secure}",
            flush=True,
        )

    try:
        await worker.serve(host, port, listening)
    except OSError as error:
        raise GraphctlError(f"cannot listen on {args.listen}: {error.strerror or error}") from None
    print(f"graphctl: worker {config.name} drained and stopped", flush=True)
    return 0
