"""A real Triton Inference Server for the remote tests and benchmarks (through nvidia-pytriton).

pytriton pins NumPy < 2, so it lives in its own environment, built once under /tmp (keyed by a
hash of its requirements and this Python, so reruns reuse it) and never committed. Its Python
backend links the system's libpython: under a Python other than the system's (pyenv) the
server needs that Python's lib directory on ``LD_LIBRARY_PATH``. Where the environment cannot
be made (no network) or Triton cannot start, :func:`triton_python` / :class:`TritonServer` raise
:class:`TritonUnavailable` with the reason, which the tests turn into a skip.

The server (``tests/triton_server.py``) binds 127.0.0.1 on free ports, runs in its own process
group and is killed with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2", "openvino>=2024.6")
SERVER_SCRIPT = Path(__file__).with_name("triton_server.py")
_BUILD_TIMEOUT_S = 1200
_START_TIMEOUT_S = 240


class TritonUnavailable(RuntimeError):
    """The Triton environment cannot be made, or the server does not start (the reason)."""


def env_dir() -> Path:
    key = hashlib.sha256(("\n".join(REQUIREMENTS) + sys.version).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ovseg-pytriton-{key}"


def library_path() -> str:
    """``LD_LIBRARY_PATH`` with this Python's lib directory first (pytriton's backend links libpython)."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    return os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)


def triton_python() -> Path:
    """The Python of the pytriton environment, built on first use (minutes; cached under /tmp)."""
    root = env_dir()
    python = root / "bin" / "python"
    done = root / ".complete"
    if done.is_file():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
        if done.is_file():
            return python
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, capture_output=True, timeout=300)
            out = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
                capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise TritonUnavailable(f"cannot build the pytriton environment in {root}: {error}") from None
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["pip failed"]
            raise TritonUnavailable(f"cannot install {' '.join(REQUIREMENTS)} in {root}: {tail[0]}")
        done.write_text("\n".join(REQUIREMENTS) + "\n")
    return python


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class TritonServer:
    """Triton serving the models of ``models`` (see ``tests/triton_server.py`` for the spec of
    each: ``name``, ``xml``, ``instances``, ``delay_s``, ``declare``, ``reply``).

    >>> with TritonServer([{"name": "standin", "xml": "model.xml"}], workdir) as server:
    ...     Segmenter(server.grpc_url("standin"))
    """

    def __init__(self, models: list[dict[str, Any]], workdir: Path) -> None:
        self.models = models
        self.workdir = Path(workdir)
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.process: subprocess.Popen[str] | None = None
        self._log = self.workdir / f"triton-{self.grpc_port}.log"

    def grpc_url(self, name: str) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}/{name}"

    def http_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/v2/models/{name}"

    def start(self) -> TritonServer:
        python = triton_python()
        self.workdir.mkdir(parents=True, exist_ok=True)
        spec = {
            "grpc_port": self.grpc_port, "http_port": self.http_port, "metrics_port": self.metrics_port,
            "workspace": str(self.workdir / f"workspace-{self.grpc_port}"), "models": self.models,
        }
        spec_path = self.workdir / f"spec-{self.grpc_port}.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "LD_LIBRARY_PATH": library_path(), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        log = open(self._log, "w")  # noqa: SIM115 - closed in stop()
        self._log_file = log
        self.process = subprocess.Popen(
            [str(python), str(SERVER_SCRIPT), str(spec_path)], stdout=subprocess.PIPE, stderr=log, text=True,
            env=env, start_new_session=True,
        )
        ready = threading.Event()

        def watch() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                if line.strip() == "READY":
                    ready.set()
            ready.set()  # the server ended

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(_START_TIMEOUT_S) or self.process.poll() is not None:
            reason = self.log_tail()
            self.stop()
            raise TritonUnavailable(f"Triton did not start within {_START_TIMEOUT_S} s: {reason}")
        return self

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = [ln for ln in self._log.read_text(errors="replace").splitlines() if ln.strip()]
            errors = [ln for ln in lines if "rror" in ln or "Exception" in ln]
            return (errors or lines or ["no output"])[-1][:300]
        return "no log"

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 15 s; returns when it is gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            pass
        # Triton's own children (tritonserver, the backend stubs) share the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(self.process.pid):
            time.sleep(0.1)
        self._log_file.close()
        self.process = None

    def kill_now(self) -> None:
        """SIGKILL the whole server at once (a server that stops mid-stream)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
