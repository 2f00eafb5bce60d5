"""Hosts as Linux network namespaces, for the tests of worker hosts over a real
network: a bridge in the root namespace and one namespace per host, each joined
to the bridge by a veth pair, on a private /24 that exists only on that bridge.

    with Network(["h1", "h2"]) as net:
        subprocess.run(net.exec("h1", "ip", "addr"))   # a command inside host h1
        net.link_down("h1")                             # cut h1 off, as a pulled cable

Names carry the test process's id (``gcn<pid>...``), so parallel runs do not
collide; leftovers of runs whose process is gone (a crashed or killed run) are
removed before anything is made. Everything made is removed on ``close()``,
whatever happened. Every ``ip`` command is bounded in time. Needs root (or
CAP_NET_ADMIN and CAP_SYS_ADMIN): ``require_namespaces()`` says so clearly.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

PREFIX = "gcn"  # every name this harness makes starts with it, then the pid
NETNS_ETC = Path("/etc/netns")  # `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc
SUBNET_BASE = "10.213"  # 10.213.N.0/24: the first N from 7 not on any interface
IP_TIMEOUT_S = 10.0
_OWN_NAME = re.compile(rf"^{PREFIX}(\d+)[bv-]")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip ARGS``, bounded in time; ``check`` raises with ip's own message."""
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def require_namespaces() -> None:
    """Raise a clear error where network namespaces cannot be made here."""
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        done = ip("netns", "add", probe, check=False)
    except FileNotFoundError as exc:
        raise RuntimeError(f"these tests need iproute2's `ip` command: {exc}") from exc
    ip("netns", "delete", probe, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            "these tests run worker hosts in Linux network namespaces and need root "
            f"(CAP_NET_ADMIN and CAP_SYS_ADMIN) with iproute2: `ip netns add` said "
            f"{done.stderr.strip()!r} (uid {os.geteuid()})"
        )


def _gone(pid: int) -> bool:
    if pid == os.getpid():
        return True  # a crashed run that had our pid: ours now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_leftovers() -> None:
    """Remove namespaces (and the processes left in them), links and /etc/netns
    folders of runs that are gone."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _OWN_NAME.match(name)
        if match and _gone(int(match.group(1))):
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)  # the dead run's worker hosts
            ip("netns", "delete", name, check=False)
    for line in ip("-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        match = _OWN_NAME.match(name)
        if match and _gone(int(match.group(1))):
            ip("link", "delete", name, check=False)
    if NETNS_ETC.is_dir():
        for folder in NETNS_ETC.iterdir():
            match = _OWN_NAME.match(folder.name)
            if match and _gone(int(match.group(1))):
                shutil.rmtree(folder, ignore_errors=True)


def _free_subnet() -> str:
    used = ip("-4", "-o", "addr", "show").stdout
    for third in range(7, 255):
        if f" {SUBNET_BASE}.{third}." not in used:
            return f"{SUBNET_BASE}.{third}"
    raise RuntimeError(f"no free /24 left in {SUBNET_BASE}.0.0/16")


class Network:
    """A bridge (address ``.1``) and one namespace per host (``.11``, ``.12``, ...)."""

    def __init__(self, hosts: Sequence[str]) -> None:
        remove_leftovers()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.bridge = f"{self.tag}b"
        self.subnet = _free_subnet()
        self.gateway = f"{self.subnet}.1"
        self.hosts = list(hosts)
        self._made_bridge = False
        self._made: list[str] = []
        try:
            self._make()
        except BaseException:
            self.close()
            raise

    def _make(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            namespace = self.namespace(host)
            ip("netns", "add", namespace)
            self._made.append(namespace)
            veth = self.veth(host)
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", veth, "master", self.bridge, "up")
            inside = ("netns", "exec", namespace, "ip")
            ip(*inside, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            ip(*inside, "link", "set", "lo", "up")

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def veth(self, host: str) -> str:
        """The root end of ``host``'s veth pair, on the bridge (15 characters at most)."""
        return f"{self.tag}v{self.hosts.index(host)}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{11 + self.hosts.index(host)}"

    def exec(self, host: str, *command: str) -> list[str]:
        """The command line running ``command`` inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(host), *command]

    def link_down(self, host: str) -> None:
        ip("link", "set", self.veth(host), "down")

    def link_up(self, host: str) -> None:
        ip("link", "set", self.veth(host), "up")

    def use_nameserver(self, host: str, address: str) -> None:
        """Make ``address`` the resolver of processes started with ``exec(host, ...)``."""
        folder = NETNS_ETC / self.namespace(host)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {address}\noptions timeout:1 attempts:2\n")

    def close(self) -> None:
        """Remove everything made, whatever state it is in."""
        for namespace in self._made:
            ip("netns", "delete", namespace, check=False)  # its veth pair goes with it
            shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
        self._made.clear()
        if self._made_bridge:
            ip("link", "delete", self.bridge, check=False)
            self._made_bridge = False
        with contextlib.suppress(OSError):  # only if empty: other runs may use it
            NETNS_ETC.rmdir()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
