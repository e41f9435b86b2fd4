"""Clean output: third-party progress bars and warnings stay off the terminal unless --verbose."""

from __future__ import annotations

import os
import subprocess
import warnings

import pytest

from culturellm.jsonio import write_jsonl
from serve_helpers import culturellm_exe

BARS = ("Loading weights", "Batches", "it/s]", "%|")


@pytest.fixture
def restored_env(monkeypatch):
    """quiet_third_party sets environment variables; monkeypatch puts them back after the test."""
    from culturellm.quiet import QUIET_ENV

    for key in QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    yield
    from culturellm.quiet import quiet_third_party

    quiet_third_party(verbose=True)  # forget what it set


def test_quiet_sets_the_variables_a_user_did_not_and_verbose_undoes_them(restored_env, monkeypatch):
    from culturellm.quiet import quiet_third_party

    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own choice stays
    with warnings.catch_warnings():
        quiet_third_party(verbose=False)
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TQDM_DISABLE"] == "1"
        assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)
            warnings.warn("culturellm: spec plugin 'x' failed to load", stacklevel=1)
        assert [str(w.message) for w in seen] == ["culturellm: spec plugin 'x' failed to load"]
        quiet_third_party(verbose=True)
        assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ and "TQDM_DISABLE" not in os.environ
        assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)
        assert len(seen) == 1


def test_verbose_is_a_global_option(cli):
    res = cli("--help")
    assert "--verbose" in res.out


@pytest.mark.slow
def test_a_run_that_loads_the_bundled_model_and_embedder_prints_no_library_bars(tmp_path):
    """`culturellm augment check` loads the bundled SmolLM2 (fluency) and MiniLM (embeddings) and
    embeds more texts than one batch: its captured output holds culturellm's line, no library bar."""
    rows = [
        {"q_id": "27", "q_content": f"Making my parents proud has been one of my main aims in life ({i})",
         "ori_content": "One of my main goals in life has been to make my parents proud"}
        for i in range(40)
    ]  # fmt: skip
    path = tmp_path / "new_WVQ_small.jsonl"
    write_jsonl(path, rows)
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    run = subprocess.run(
        [*culturellm_exe(), "augment", "check", str(path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "40 rows" in " ".join(out.split())
    assert not [b for b in BARS if b in out], out


def test_embedding_many_texts_shows_no_batches_bar(embedder, capfd):
    """More texts than sentence-transformers' bar used to appear for (4 batches): still no bar, on the
    terminal or in a log, even with tqdm enabled (culturellm's callers show their own progress)."""
    import uuid

    run = uuid.uuid4().hex  # texts no cache has seen
    texts = [f"statement {i} of run {run}" for i in range(4 * embedder.batch_size + 8)]
    capfd.readouterr()
    assert embedder.encode(texts).shape == (len(texts), embedder.dim)
    out = "".join(capfd.readouterr())
    assert "Batches" not in out and "%|" not in out, out
