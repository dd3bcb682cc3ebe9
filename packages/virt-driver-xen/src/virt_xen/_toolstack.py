"""How the driver reaches Xen's toolstack: something that runs ``xl ARGS`` and answers (rc, stdout, stderr).

* :class:`LocalToolstack` runs ``xl`` here, with :mod:`subprocess`: what a dom0 uses.
* :class:`TcpToolstack` sends the command line to a command server in a dom0 over TCP (the
  Xen test lab's channel, ``tests/xenlab.py``): one connection per command; the client sends
  one line (the shell-quoted command), then the command's standard input up to a half-close;
  the server answers ``RC OUTLEN ERRLEN\\n``, the command's stdout, then its stderr.

:func:`toolstack_from_env` picks one from ``$VIRT_XEN_TOOLSTACK`` (``local``, the default, or
``tcp:HOST:PORT``).  A command's standard input, when given, is a regular file on the far
side, so ``xl create /proc/self/fd/0`` reads a configuration from it (xl refuses pipes).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from typing import NamedTuple, Protocol

__all__ = ["LocalToolstack", "TcpToolstack", "Toolstack", "XlResult", "toolstack_from_env"]

#: the environment variable naming the toolstack channel
TOOLSTACK_ENV = "VIRT_XEN_TOOLSTACK"
#: what ``xl create`` reads its configuration from when it comes on standard input
STDIN_PATH = "/proc/self/fd/0"


class XlResult(NamedTuple):
    rc: int
    out: str
    err: str


class Toolstack(Protocol):
    """Runs ``xl`` with ``args``; ``stdin`` (bytes) is given to it as a regular file."""

    description: str

    def xl(self, args: Sequence[str], stdin: bytes | None = None, timeout: float = 300.0) -> XlResult: ...

    def tool(self, argv: Sequence[str], timeout: float = 60.0) -> XlResult:
        """Run another of Xen's tools where xl runs (``xenstore-read PATH``...)."""

    def makedirs(self, path: str) -> None:
        """Create a directory where xl runs (for managed save images)."""

    def remove(self, path: str) -> None:
        """Remove a file where xl runs, if it exists (a managed save image once used)."""


class LocalToolstack:
    """``xl`` on this host (a dom0)."""

    def __init__(self, xl: str = "xl") -> None:
        self.argv0 = xl
        self.description = f"local {xl}"

    def xl(self, args: Sequence[str], stdin: bytes | None = None, timeout: float = 300.0) -> XlResult:
        with tempfile.TemporaryFile() as src:
            if stdin:
                src.write(stdin)
                src.seek(0)
            try:
                proc = subprocess.run([self.argv0, *args], stdin=src, capture_output=True, timeout=timeout,
                                      check=False)
            except FileNotFoundError:
                return XlResult(127, "", f"{self.argv0}: not found (install Xen's xen-utils)\n")
            except subprocess.TimeoutExpired:
                return XlResult(124, "", f"xl {' '.join(args)}: timed out after {timeout:g} s\n")
        return XlResult(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def tool(self, argv: Sequence[str], timeout: float = 60.0) -> XlResult:
        program = argv[0]
        if "/" not in program and "/" in self.argv0:  # next to a named xl, else on PATH
            sibling = os.path.join(os.path.dirname(self.argv0), program)
            if os.access(sibling, os.X_OK):
                program = sibling
        try:
            proc = subprocess.run([program, *argv[1:]], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            return XlResult(127, "", f"{argv[0]}: not found (install Xen's xenstore-utils)\n")
        except subprocess.TimeoutExpired:
            return XlResult(124, "", f"{' '.join(argv)}: timed out after {timeout:g} s\n")
        return XlResult(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def makedirs(self, path: str) -> None:
        os.makedirs(path, mode=0o700, exist_ok=True)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class TcpToolstack:
    """``xl`` in a dom0 behind the command server of ``tests/xenlab.py``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.description = f"tcp:{host}:{port}"

    def run(self, command: str, stdin: bytes | None = None, timeout: float = 300.0) -> XlResult:
        """Any shell command line in dom0."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                sock.sendall(command.encode() + b"\n" + (stdin or b""))
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as exc:
            return XlResult(255, "", f"cannot reach the dom0 command server at {self.host}:{self.port}: {exc}\n")
        data = b"".join(chunks)
        header, sep, rest = data.partition(b"\n")
        fields = header.split()
        if not sep or len(fields) != 3 or not all(f.isdigit() for f in fields):
            return XlResult(255, "", f"the dom0 command server answered {data[:200]!r}\n")
        rc, nout, nerr = (int(f) for f in fields)
        return XlResult(rc, rest[:nout].decode(errors="replace"), rest[nout:nout + nerr].decode(errors="replace"))

    def xl(self, args: Sequence[str], stdin: bytes | None = None, timeout: float = 300.0) -> XlResult:
        return self.run(shlex.join(["xl", *args]), stdin, timeout)

    def tool(self, argv: Sequence[str], timeout: float = 60.0) -> XlResult:
        return self.run(shlex.join(list(argv)), None, timeout)

    def makedirs(self, path: str) -> None:
        result = self.run(shlex.join(["mkdir", "-p", "-m", "700", path]))
        if result.rc != 0:
            raise OSError(f"mkdir {path} in dom0: {result.err.strip()}")

    def remove(self, path: str) -> None:
        result = self.run(shlex.join(["rm", "-f", path]))
        if result.rc != 0:
            raise OSError(f"rm {path} in dom0: {result.err.strip()}")


def parse_toolstack(spec: str) -> Toolstack | None:
    """``local``, ``local:/path/to/xl`` or ``tcp:HOST:PORT``; None for anything else."""
    if spec in ("", "local"):
        return LocalToolstack()
    kind, _, rest = spec.partition(":")
    if kind == "local" and rest:
        return LocalToolstack(rest)
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return TcpToolstack(host, int(port))
    return None


def toolstack_from_env() -> Toolstack | None:
    """The toolstack ``$VIRT_XEN_TOOLSTACK`` names, or None when it is unset (use this host's)."""
    spec = os.environ.get(TOOLSTACK_ENV, "")
    if not spec:
        return None
    return parse_toolstack(spec)
