"""Helpers for tests that run `culturellm serve` (or another HTTP server) on 127.0.0.1, or another
`culturellm` command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


class Resp:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> Any:
        return json.loads(self._body)


def http(
    method: str,
    url: str,
    payload: Any = None,
    content: bytes | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> Resp:
    """A plain HTTP request (urllib): status and body, errors included."""
    import urllib.error
    import urllib.request

    data = content if content is not None else (json.dumps(payload).encode() if payload is not None else None)
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.read())


def culturellm_exe() -> list[str]:
    """The installed `culturellm` console script (on PATH, or beside this interpreter when the venv is
    not activated); `python -m culturellm.cli` where neither exists."""
    exe = shutil.which("culturellm") or os.path.join(os.path.dirname(sys.executable), "culturellm")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "culturellm.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    *args: str, timeout: float = 300.0, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`culturellm serve ARGS --host 127.0.0.1 --port P` in a subprocess; (process, base URL .../v1)
    once /health answers. One torch thread unless `env` says otherwise: on the shared 2-core CI
    machine a second thread makes small models 10-100x slower (thread-pool oversubscription)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "culturellm.cli", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out[-2000:]}")
        try:
            if http("GET", f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, url
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start in time")


def serving(*args: str, **kw: Any) -> Iterator[str]:
    """For a fixture: `yield from serving(ARGS)` yields the base URL of `start_server(ARGS)` and stops
    the server after."""
    proc, url = start_server(*args, **kw)
    try:
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def uvicorn_thread(app: Any, timeout: float = 30.0) -> Iterator[int]:
    """`app` on a real uvicorn server in a thread of this process (127.0.0.1, a free port): yields the
    port once it listens; stopped after."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not srv.started:
            assert time.monotonic() < deadline, "uvicorn server did not start"
            time.sleep(0.05)
        yield srv.servers[0].sockets[0].getsockname()[1]
    finally:
        srv.should_exit = True
        thread.join(10)


def cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`culturellm ARGS` in a subprocess (this interpreter), its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "culturellm.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with `n` torch threads (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
