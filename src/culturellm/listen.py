"""The HTTP servers' one way to listen (`serve`, `review`): the port is bound here, before uvicorn
starts, so a port in use (or a host that is not this machine's) is one `error:` line with exit code 2
instead of uvicorn's log line and its exit code 3. Also their one way to read a request body under a
size limit before the app sees it (`read_body`, `replaying`)."""

from __future__ import annotations

import errno
import socket
from typing import Any

from culturellm.errors import CultureLLMError


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to `host`:`port`; CultureLLMError saying why it cannot be."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise CultureLLMError(f"--host {host}: not an address of this machine ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        why = e.strerror or str(e)
        in_use = e.errno == errno.EADDRINUSE
        hint = "; another server is listening there: choose another --port" if in_use else ""
        raise CultureLLMError(f"cannot listen on {shown}: {why}{hint}") from None
    sock.set_inheritable(True)
    return sock


def run_server(app: Any, sock: socket.socket) -> None:
    """Serve `app` with uvicorn on a socket from `bind` until interrupted (then the socket is closed)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class BodyTooLarge(Exception):
    """A request body past the server's limit."""


async def read_body(receive: Any, max_body: int) -> bytes | None:
    """The whole request body from an ASGI `receive` (None: the client disconnected); BodyTooLarge past
    `max_body` bytes, so a chunked body over the limit is refused as one with a Content-Length is."""
    chunks: list[bytes] = []
    seen, more = 0, True
    while more:
        msg = await receive()
        if msg["type"] != "http.request":
            return None
        chunk = msg.get("body", b"")
        seen += len(chunk)
        if seen > max_body:
            raise BodyTooLarge()
        chunks.append(chunk)
        more = msg.get("more_body", False)
    return b"".join(chunks)


def replaying(body: bytes, receive: Any) -> Any:
    """An ASGI `receive` that hands the app the body already read, once, then the real `receive`
    (disconnect detection)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
