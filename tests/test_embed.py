"""Bundled embedder: unit-norm float32 rows, semantic sanity, memory and disk caches."""

from __future__ import annotations

import numpy as np
import pytest

from culturellm.embed import EmbeddingStore, SentenceEmbedder, load_embedder
from culturellm.errors import UnknownNameError
from culturellm.llm.base import Embedder


def test_bundled_embedder_shapes_and_norms(embedder) -> None:
    assert isinstance(embedder, Embedder)
    texts = ["Family is very important in my life.", "My family matters a great deal to me.", "Tax rates"]
    m = embedder.encode(texts)
    assert m.dtype == np.float32 and m.shape == (3, 384)
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    sims = m @ m.T
    assert sims[0, 1] > 0.6 > sims[0, 2]
    assert embedder.encode([]).shape == (0, 384)


def test_embedding_caches(tmp_path, embedder) -> None:
    store = EmbeddingStore(tmp_path / "emb.sqlite")
    e = SentenceEmbedder(embedder.model, "all-MiniLM-L6-v2", store=store)
    texts = ["alpha beta", "gamma", "alpha beta"]
    a = e.encode(texts)
    assert e.computed == 2  # duplicates computed once
    b = e.encode(list(reversed(texts)))
    assert e.computed == 2  # memory hits
    assert np.allclose(a, b[::-1])
    fresh = SentenceEmbedder(
        embedder.model, "all-MiniLM-L6-v2", store=EmbeddingStore(tmp_path / "emb.sqlite")
    )
    c = fresh.encode(["gamma", "delta"])
    assert fresh.computed == 1  # "gamma" came from disk
    assert np.allclose(c[0], a[1], atol=1e-6)
    # the batched result equals encoding one at a time
    single = SentenceEmbedder(embedder.model, "x", memory_cache=False).encode(["delta"])
    assert np.allclose(single[0], c[1], atol=1e-5)


def test_memoised_and_unknown(embedder) -> None:
    assert load_embedder("bundled") is embedder
    with pytest.raises(UnknownNameError):
        load_embedder("no-such-embedder")
