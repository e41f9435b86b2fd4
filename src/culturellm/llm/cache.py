"""The response cache: no model call is ever paid twice.

SQLite (WAL) at `paths.cache_dir()/responses.sqlite`. A generate entry is keyed by backend, model,
messages and every sampling parameter (sample_index included, so sampled runs replay exactly); a score
entry by backend, model, messages, candidates and end_of_turn. Each entry stores the response, its
tokens, cost and latency. Hit/miss counters (and tokens/cost saved by hits) persist in the database.
A failed call stores nothing. Safe to share between threads and processes.

`CachingBackend(backend, cache)` wraps a backend, as lm-eval's `CachingLM` wraps an LM: the dependency
runs one way (the cache knows the backend contract: `backend`, `model_id`, `score_tag`,
`generate_detailed`, `score_detailed`; the backend knows nothing of the cache). Misses are sent to the
wrapped backend in chunks of `chunk` requests, each stored as soon as it returns, so a run killed (or a
server lost) midway keeps what was already paid for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from culturellm import paths
from culturellm.llm.backend import Backend, Kind
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.records import Completion, Scored
from culturellm.sqlitecache import check_columns, guarded

T = TypeVar("T")

KEY_VERSION = 1
CACHE_FILE = "responses.sqlite"
_COLUMNS = ("key", "kind", "backend", "model", "response", "prompt_tokens", "completion_tokens", "cost_usd")
_COLUMNS += ("latency_s", "created")


def default_cache_path() -> Path:
    return paths.cache_dir() / CACHE_FILE


def foreign_entry(path: Path) -> str | None:
    """What sits at the cache path when it is not a file a cache can be (a directory, a FIFO, a device;
    through a link too), else None."""
    if not path.exists() or path.is_file():
        return None
    return "a directory" if path.is_dir() else "not a regular file"


def remove_entry(path: Path) -> None:
    """Remove whatever sits at `path` (a directory with its content; a link itself, never its target)
    and the database's -wal/-shm files beside it."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    for extra in ("-wal", "-shm", "-journal"):
        Path(f"{path}{extra}").unlink(missing_ok=True)


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def generate_key(backend: str, model: str, messages: Chat, params: SamplingParams) -> str:
    p = dataclasses.asdict(params)
    p["stop"] = list(p["stop"])
    if params.temperature == 0:  # greedy: seed and top_p cannot change the answer
        p.update(seed=0, top_p=1.0)
    return _digest(["generate", KEY_VERSION, backend, model, list(messages), p])


def score_key(backend: str, model: str, request: ScoreRequest) -> str:
    return _digest(
        [
            "score",
            KEY_VERSION,
            backend,
            model,
            list(request.messages),
            list(request.candidates),
            request.end_of_turn,
        ]
    )


class ResponseCache:
    """Key -> stored response, plus persistent counters."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._guard(lambda: None)

    def _create(self) -> None:
        with self._conn() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                "backend TEXT NOT NULL, model TEXT NOT NULL, response TEXT NOT NULL, "
                "prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, "
                "cost_usd REAL NOT NULL DEFAULT 0, latency_s REAL NOT NULL DEFAULT 0, created REAL NOT NULL)"
            )
            c.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL)")
            check_columns(c, "responses", _COLUMNS)
            check_columns(c, "counters", ("name", "value"))
        self._local.ready = True

    def _reset(self) -> None:
        self.close()
        self._local.ready = False

    def _guard(self, op: Callable[[], T]) -> T:
        """Run a database operation; a damaged cache file is moved aside (with a warning on stderr) and
        an empty cache created in its place, so every command (`cache clear` too) keeps working."""

        def run() -> T:
            if not getattr(self._local, "ready", False):
                self._create()
            return op()

        return guarded(self.path, run, self._reset)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():  # never share across fork
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, sqlite3.Row | tuple]:
        return self._guard(lambda: self._get_many(keys))

    def _get_many(self, keys: Sequence[str]) -> dict[str, sqlite3.Row | tuple]:
        conn = self._conn()
        found: dict[str, tuple] = {}
        uniq = list(dict.fromkeys(keys))
        for start in range(0, len(uniq), 500):
            part = uniq[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in conn.execute(
                "SELECT key, response, prompt_tokens, completion_tokens, cost_usd, latency_s "
                f"FROM responses WHERE key IN ({marks})",
                part,
            ):
                found[row[0]] = row[1:]
        return found

    def put_many(self, kind: str, backend: str, model: str, items: Sequence[tuple[str, str, Any]]) -> None:
        """items: (key, response JSON, Completion|Scored)."""
        if items:
            self._guard(lambda: self._put_many(kind, backend, model, items))

    def _put_many(self, kind: str, backend: str, model: str, items: Sequence[tuple[str, str, Any]]) -> None:
        now = time.time()
        conn = self._conn()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO responses (key, kind, backend, model, response, prompt_tokens, "
                "completion_tokens, cost_usd, latency_s, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        k,
                        kind,
                        backend,
                        model,
                        resp,
                        d.prompt_tokens,
                        d.completion_tokens,
                        d.cost_usd,
                        d.latency_s,
                        now,
                    )
                    for k, resp, d in items
                ],
            )

    def bump(self, **deltas: float) -> None:
        deltas = {k: v for k, v in deltas.items() if v}
        if deltas:
            self._guard(lambda: self._bump(deltas))

    def _bump(self, deltas: dict[str, float]) -> None:
        conn = self._conn()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(deltas.items()),
            )

    def stats(self) -> dict[str, Any]:
        return self._guard(self._stats)

    def _stats(self) -> dict[str, Any]:
        conn = self._conn()
        entries, ptoks, ctoks, cost = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
            "COALESCE(SUM(cost_usd),0) FROM responses"
        ).fetchone()
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        by_model = conn.execute(
            "SELECT backend, model, kind, COUNT(*) FROM responses GROUP BY backend, model, kind "
            "ORDER BY COUNT(*) DESC"
        ).fetchall()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "entries": int(entries),
            "hits": int(counters.get("hits", 0)),
            "misses": int(counters.get("misses", 0)),
            "tokens_saved": int(counters.get("tokens_saved", 0)),
            "cost_saved_usd": round(float(counters.get("cost_saved_usd", 0.0)), 6),
            "stored_tokens": int(ptoks + ctoks),
            "stored_cost_usd": round(float(cost), 6),
            "size_bytes": size,
            "by_model": [{"backend": b, "model": m, "kind": k, "entries": int(n)} for b, m, k, n in by_model],
        }

    def clear(self, model: str | None = None) -> int:
        """Delete entries (all, or those of one model) and, when clearing all, reset the counters."""
        return self._guard(lambda: self._clear(model))

    def _clear(self, model: str | None) -> int:
        conn = self._conn()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if model is None:
                n = conn.execute("DELETE FROM responses").rowcount
                conn.execute("DELETE FROM counters")
            else:
                n = conn.execute("DELETE FROM responses WHERE model = ?", (model,)).rowcount
        return int(n)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class CachingBackend(Backend):
    """`inner` answering through the response cache `cache`, with usage of its own (weights, client and
    locks are `inner`'s). Every other attribute is `inner`'s (`tokenizer`, `device_name`...)."""

    def __init__(self, inner: Backend, cache: ResponseCache, *, chunk: int = 64) -> None:
        super().__init__(inner.name, inner.model_id)
        self.inner, self.cache, self.chunk = inner, cache, chunk

    @property  # type: ignore[misc]
    def backend(self) -> str:  # type: ignore[override]
        return self.inner.backend

    @property  # type: ignore[misc]
    def score_tag(self) -> str:  # type: ignore[override]
        return self.inner.score_tag

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def generate_detailed(
        self, requests: Sequence[Chat], params: SamplingParams | None = None
    ) -> list[Completion]:
        return self._answer("generate", requests, params or SamplingParams())

    def score_detailed(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        return self._answer("score", requests, None)

    def _answer(self, kind: Kind, requests: Sequence[Any], params: SamplingParams | None) -> list[Any]:
        """The wrapped backend's detailed answers to `requests`: stored ones (marked `cached`) and, for
        the others, the backend's (stored as each chunk returns). Identical requests are computed once."""
        inner, cache, chunk = self.inner, self.cache, self.chunk
        params = params or SamplingParams()
        if kind == "generate":
            keys = [generate_key(inner.backend, inner.model_id, r, params) for r in requests]
        else:
            # a backend whose scoring method changes its numbers (HTTP: exact / first-token / parse)
            # keys its entries by the method it was asked for
            tag = inner.score_tag
            model = f"{inner.model_id}#{tag}" if tag else inner.model_id
            keys = [score_key(inner.backend, model, r) for r in requests]
        found = cache.get_many(keys)
        out: dict[str, Any] = {k: _stored(kind, row) for k, row in found.items()}
        for k in [k for k, d in out.items() if d is None]:  # a damaged entry: recomputed and replaced
            del found[k], out[k]
        hit_rows = [found[k] for k in keys if k in found]
        cache.bump(
            hits=len(hit_rows),
            tokens_saved=sum(int(r[1]) + int(r[2]) for r in hit_rows),
            cost_saved_usd=sum(float(r[3]) for r in hit_rows),
        )
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        miss = list(first.values())
        for start in range(0, len(miss), chunk):
            part = miss[start : start + chunk]
            batch = [requests[i] for i in part]
            if kind == "generate":
                done: list[Any] = inner.generate_detailed(batch, params)
            else:
                done = inner.score_detailed(batch)
            cache.put_many(
                kind,
                inner.backend,
                inner.model_id,
                [(keys[i], _response_json(d), d) for i, d in zip(part, done, strict=True)],
            )
            cache.bump(misses=len(part))
            out.update((keys[i], d) for i, d in zip(part, done, strict=True))
        dups = len(keys) - len(hit_rows) - len(miss)
        cache.bump(hits=dups)
        return [out[k] if k in found or first[k] == i else _as_hit(out[k]) for i, k in enumerate(keys)]


_CACHES: dict[Path, ResponseCache] = {}
_CACHES_LOCK = threading.Lock()


def open_cache(path: str | Path | None = None) -> ResponseCache:
    """The process-wide ResponseCache for a path (default: the user cache dir)."""
    p = Path(path) if path else default_cache_path()
    with _CACHES_LOCK:
        if p not in _CACHES or not p.exists():
            _CACHES[p] = ResponseCache(p)
        return _CACHES[p]


def _response_json(d: Completion | Scored) -> str:
    if isinstance(d, Completion):
        return json.dumps({"text": d.text})
    r = d.result
    return json.dumps({"logprobs": list(r.logprobs), "num_tokens": list(r.num_tokens), "method": r.method})


def _stored(kind: str, row: Sequence[Any]) -> Completion | Scored | None:
    """A record answered from a stored row (response, prompt/completion tokens, cost, latency); None when
    the stored payload is not JSON or not of the shape we write (the entry is then recomputed)."""
    try:
        d = json.loads(row[0])
        cost = {"prompt_tokens": int(row[1]), "completion_tokens": int(row[2]), "cost_usd": float(row[3])}
        latency = float(row[4])
        if kind == "generate":
            return (
                Completion(d["text"], latency_s=latency, cached=True, **cost)
                if isinstance(d["text"], str)
                else None
            )
        logprobs, counts = tuple(float(x) for x in d["logprobs"]), tuple(int(x) for x in d["num_tokens"])
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if len(logprobs) != len(counts):
        return None
    result = ScoreResult(logprobs=logprobs, num_tokens=counts, method=str(d.get("method", "exact")))
    return Scored(result, latency_s=latency, cached=True, **cost)


def _as_hit(d: Completion | Scored) -> Completion | Scored:
    """A repeat of a request computed earlier in the same call: it counts as a cache hit."""
    return dataclasses.replace(d, cached=True)
