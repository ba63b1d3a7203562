"""Real ``ovseg serve`` processes for tests: started on 127.0.0.1 with ports the OS picks, in a
process group of their own, waited for with a deadline, and killed (the whole group) when the
test is done, whatever happened.

>>> with serve_process(model, "--infer-precision", "f32", log_dir=tmp_path) as server:
...     tritonclient.grpc.InferenceServerClient(server.grpc_url).is_server_ready()
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Served", "serve_process", "stop_group", "READY"]

#: The line ``ovseg serve`` prints once both servers listen.
READY = re.compile(
    r"ovseg serve: (?P<name>\S+) and (?P<pipeline>\S+) on http://(?P<host>[^ ]+):(?P<http>\d+) \(REST\) and "
    r"\S+:(?P<grpc>\d+) \(gRPC\)"
)


@dataclasses.dataclass
class Served:
    """A running server: its process, address, ports, model names and log files."""

    process: subprocess.Popen[bytes]
    host: str
    http_port: int
    grpc_port: int
    name: str
    pipeline: str
    stdout: Path
    stderr: Path

    @property
    def http_url(self) -> str:
        """``HOST:PORT`` as tritonclient.http wants it."""
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def log(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int | None:
    """Send ``sig`` to the process group, wait up to ``timeout_s``, then SIGKILL the group.
    Returns the exit code (``None`` if it had to be killed)."""
    code = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if code is None:
        process.wait(timeout=10)
    return code


@contextlib.contextmanager
def serve_process(model: str | Path, *args: str, log_dir: Path | None = None, start_timeout_s: float = 90.0) -> Iterator[Served]:
    """Run ``ovseg serve MODEL --host 127.0.0.1 --http-port 0 --grpc-port 0 ARGS`` until the
    block ends; yields once it prints that it listens (or fails the test with its log)."""
    import pytest

    folder = Path(log_dir or tempfile.mkdtemp(prefix="ovseg-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    out, err = folder / "serve.stdout", folder / "serve.stderr"
    command = [sys.executable, "-m", "ovseg", "serve", str(model), "--host", "127.0.0.1", "--http-port", "0",
               "--grpc-port", "0", *args]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        match = None
        while match is None:
            match = READY.search(out.read_text(errors="replace"))
            if match is None:
                if process.poll() is not None:
                    pytest.fail(f"ovseg serve exited with {process.returncode} before listening: {err.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"ovseg serve did not listen within {start_timeout_s} s: {err.read_text()[-2000:]}")
                time.sleep(0.05)
        yield Served(process, match["host"], int(match["http"]), int(match["grpc"]), match["name"], match["pipeline"], out, err)
    finally:
        if process.poll() is None:
            stop_group(process)
        else:
            with contextlib.suppress(ProcessLookupError):  # a child left behind by a dead server
                os.killpg(process.pid, signal.SIGKILL)
