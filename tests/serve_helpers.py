"""Helpers for tests that run `culturellm serve` (or another HTTP server) on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
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
