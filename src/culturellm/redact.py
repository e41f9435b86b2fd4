"""Credentials never leave in a URL: one redaction rule for every URL culturellm prints or stores.

`redact_url` drops the user name and password (`http://user:PASS@host/v1` -> `http://host/v1`) and
replaces the value of any query parameter that looks like a credential (`api_key`, `key`, `token`,
`access_token`, `password`, `secret`, `sig`, ... any name holding `key`, `token`, `secret`, `pass`,
`auth` or `sig`) with `REDACTED`. Anything in the path, a query value or the fragment that looks like
a key is `REDACTED` too: an `sk-` token (OpenAI, Anthropic, ...) or a long random token (24 or more
letters, digits, `-` or `_`, with both letters and digits: `hf_...`, hex keys, JWT parts).
`redact_text` applies it to every URL inside a text (error messages, logs)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
_SECRET_NAME = re.compile(r"key|token|secret|pass|auth|sig|credential|session|code", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?:sk-[A-Za-z0-9_-]{4,}|[A-Za-z0-9_-]{24,})(?![A-Za-z0-9_-])")


def _token(m: re.Match[str]) -> str:
    word = m.group(0)
    looks_random = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
    return REDACTED if word.startswith("sk-") or looks_random else word


def redact_tokens(text: str) -> str:
    """`text` with every word that looks like a key (see the module doc) replaced by `REDACTED`."""
    return _TOKEN.sub(_token, text)


def _query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    redacted = [(k, REDACTED if _SECRET_NAME.search(k) else redact_tokens(v)) for k, v in pairs]
    if redacted == pairs:
        return query
    return urlencode(redacted, safe=REDACTED)


def redact_url(url: str) -> str:
    """`url` without user name, password or credential query parameters (see the module doc)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_tokens(re.sub(r"([?&][^=&#]*(?:key|token|secret|pass|auth|sig)[^=&#]*=)[^&#]*",
                      rf"\1{REDACTED}", re.sub(r"//[^/@]*@", "//", url), flags=re.IGNORECASE))  # fmt: skip
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{port}" if port else "")
    query = _query(parts.query)
    path, fragment = redact_tokens(parts.path), redact_tokens(parts.fragment)
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def check_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host and a valid port; ValueError otherwise (its message
    shows the URL redacted). Used where a base URL enters: the configuration (`run --check` included)
    and the OpenAI-compatible backend."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as e:
        raise ValueError(f"'{redact_url(url)}' is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{redact_url(url)}' is not an http:// or https:// URL with a host")
    return url
