"""Run ``voxguard serve`` in a child process on the loopback interface (browser tests, load tests, screenshots).

The real command line and uvicorn, not an in-process app: what a user starts is what is tested.
Standard library only, so scripts can use it without the test dependencies::

    with LocalServer(data_dir=tmp, env={"VOXGUARD_MAX_CONCURRENT": "2"}) as server:
        urllib.request.urlopen(server.url + "/healthz")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``python -m voxguard.cli serve`` on ``127.0.0.1`` and a free port, ready when entered.

    Parameters
    ----------
    data_dir : path
        ``--data-dir``: the SQLite database goes here, and the server's log (``server.log``).
    model : str, optional
        ``--model`` (default: the default model).
    env : mapping, optional
        Extra environment variables (``VOXGUARD_*`` settings). ``VOXGUARD_*`` variables of the
        calling process are *not* passed on: the server gets exactly the settings given here.
    workers : int
        ``--workers``: uvicorn worker processes, each with its own model and scan slots.
    startup_timeout_s : float
        How long to wait for ``/readyz`` to answer 200.
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str],
        model: str | None = None,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.model = model
        self.env = dict(env or {})
        self.workers = workers
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def start(self) -> LocalServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "voxguard.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.model:
            cmd += ["--model", self.model]
        if self.workers != 1:
            cmd += ["--workers", str(self.workers)]
        # Only the settings given here: a VOXGUARD_* variable left in this process's environment
        # (by a shell, or by a test) must not silently change the server under test.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VOXGUARD_")}
        env = {**inherited, **self.env}
        with self.log_path.open("wb") as log:  # a file, not a pipe: a chatty server never blocks on it
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"voxguard serve exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"voxguard serve was not ready after {self.startup_timeout_s:g} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        """Process id of ``voxguard serve`` (uvicorn's supervisor when ``workers > 1``)."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM: uvicorn shuts down cleanly), then kill it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
