"""ASGI guard of the review page: the Host header must name the bound address (a DNS-rebinding page
gets 421), request bodies are limited (413, chunked bodies too), and with an API key every /api route
needs `Authorization: Bearer KEY` (401). The page itself, static HTML, is served without a key; it reads
the key from its URL's fragment (`#key=...`, never sent to a server or logged)."""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from culturellm.listen import BodyTooLarge, read_body, replaying

MAX_BODY = 64 * 1024  # a rating is ~100 bytes


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> set[str] | None:
    """Host names (the Host header without its port) that name the bound address; None (any) for a
    wildcard bind (0.0.0.0, ::), where a key is required instead."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host.strip("[]").lower()}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1", "::1"}
    return names


def host_name(header: str) -> str:
    """`example.org:8765` -> `example.org`, `[::1]:80` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class ReviewGuard:
    """Wraps the review app (see the module doc)."""

    def __init__(self, app: Any, *, host: str, api_key: str | None, max_body: int = MAX_BODY) -> None:
        self.app, self.max_body = app, max_body
        self.hosts = allowed_hosts(host)
        self.key = api_key.encode() if api_key else None

    async def _reply(self, send: Any, status: int, detail: str) -> None:
        data = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _refusal(self, scope: Any) -> tuple[int, str] | None:
        headers = dict(scope.get("headers") or [])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if self.hosts is not None and host not in self.hosts:
            return 421, "this server does not answer for that Host"
        if self.key is not None and str(scope.get("path", "")).startswith("/api"):
            given = headers.get(b"authorization", b"")
            token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):
                return 401, "missing or wrong API key (open the page as http://HOST:PORT/#key=KEY)"
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            return 400, "bad Content-Length"
        if declared > self.max_body:
            return 413, f"request body over {self.max_body} bytes"
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            return await self._reply(send, *refusal)
        try:  # the whole (small) body first: a chunked one over the limit is 413 too
            body = await read_body(receive, self.max_body)
        except BodyTooLarge:
            return await self._reply(send, 413, f"request body over {self.max_body} bytes")
        if body is None:  # the client went away
            return None
        await self.app(scope, replaying(body, receive), send)
