"""Issue #20, defects 4-9: crashes that become one clear line (exit 2), caches with a wrong schema,
`run --check` building every model it will use, credentials stripped from URLs, the review server's
Host check / body limit / API key, and numbers checked finite and in range. Each test names the
defect it pins ([4] ... [9]); every one failed on the code before the fix."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from hostile import assert_clear_error

RUN_TOML = """
name = "t"
cultures = ["arabic"]
[augment]
n = 1
limit_seeds = 2
[evaluate]
limit = 4
tasks = ["spam_detect"]
"""


@pytest.fixture
def cli(cli, monkeypatch, tmp_path):
    """The shared in-process CLI (tests/conftest.py), run in the test's directory."""
    monkeypatch.chdir(tmp_path)
    return cli


# --- [4] crashes -> one clear line ------------------------------------------------------------------


@pytest.mark.slow  # `augment import` loads the bundled embedder
@pytest.mark.parametrize(
    "line",
    [
        json.dumps({"q_id": "²", "q_content": "x"}),
        json.dumps({"q_id": "1" * 5000, "q_content": "x"}),
        '{"q_id": ' + "1" * 5000 + ', "q_content": "x"}',
        "[" * 100_000,
    ],
    ids=["superscript", "5000-digit-string", "5000-digit-number", "nested"],
)
def test_import_odd_q_ids_and_nesting_are_rejected_lines(cli, tmp_path, line):
    """[4] `augment import` crashed (ValueError from int(), RecursionError) on these lines."""
    f = tmp_path / "rel.jsonl"
    f.write_text(line + "\n", encoding="utf-8")
    err = assert_clear_error(cli("augment", "import", str(f), "--out", str(tmp_path / "o")), "rel.jsonl")
    assert "no record fits a seed question" in err and len(err) < 400


def test_review_stats_prints_markup_as_text(cli, tmp_path):
    """[4] `review DIR --stats` crashed (Rich MarkupError) on `[/x]` in a step, reviewer or directory."""
    d = tmp_path / "rev[" / "x]"  # the directory's path holds `[/x]`
    d.mkdir(parents=True)
    rows = [
        {"id": "s1", "question_id": "Q27", "step": "seed", "text": "a seed", "parent": None},
        {"id": "p1", "question_id": "Q27", "step": "para[/x]", "text": "a variant", "parent": "s1"},
    ]
    (d / "augmented.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rating = {"reviewer": "ann[/x]", "id": "p1", "rating": "same", "time": 1.0}
    (d / "reviews.jsonl").write_text(json.dumps(rating) + "\n", encoding="utf-8")
    res = cli("review", str(d), "--stats")
    assert res.code == 0, res.err
    assert "para[/x]" in res.out and "ann[/x]" in res.out and "rev[/x]" in res.out


@pytest.mark.parametrize("payload", ["not json", '{"text": 5}', "[1, 2]", '{"logprobs": "x"}'])
def test_damaged_cache_payload_is_recomputed(tmp_path, fake_model, payload):
    """[4] A stored response that is not JSON or of the wrong shape crashed (JSONDecodeError,
    KeyError); now the entry is recomputed and replaced."""
    from culturellm.llm.backend import SamplingParams
    from culturellm.llm.cache import CachingBackend, ResponseCache

    cached = CachingBackend(fake_model, ResponseCache(tmp_path / "responses.sqlite"))
    chat = [[{"role": "user", "content": "hello"}]]
    first = cached.generate_detailed(chat, SamplingParams())
    with sqlite3.connect(tmp_path / "responses.sqlite") as c:
        c.execute("UPDATE responses SET response = ?", (payload,))
    again = cached.generate_detailed(chat, SamplingParams())
    assert again[0].text == first[0].text and not again[0].cached
    assert cached.generate_detailed(chat, SamplingParams())[0].cached  # stored again


def test_run_dir_with_a_deeply_nested_manifest(cli, tmp_path):
    """[4] A run manifest.json of 100,000 `[` (no claim marker) crashed with RecursionError."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "manifest.json").write_text("[" * 100_000)
    (tmp_path / "t.toml").write_text(RUN_TOML)
    assert_clear_error(cli("run", "t.toml", "--out", str(out), "--check"), "--force")


def _results(tmp_path: Path, **change) -> Path:
    row = {"task": "arabic/spam_detect", "model": "m", "culture": "arabic", "type": "spam", "macro_f1": 0.5,
           "accuracy": 0.5, "n": 4, "baselines": {"random": 0.4}}  # fmt: skip
    p = tmp_path / "res.jsonl"
    p.write_text(json.dumps(row | change) + "\n", encoding="utf-8")
    return p


def test_report_refuses_bad_numbers(cli, tmp_path):
    """[4] `"macro_f1": "NaN"` crashed (TypeError in isnan); [9] 1e309 and `"n": -5` were accepted."""
    for change, needle in [
        ({"macro_f1": "NaN"}, "'NaN'"),
        ({"macro_f1": 1e309}, "got inf"),
        ({"n": -5}, "got -5"),
        ({"macro_f1": 1.5}, "got 1.5"),
    ]:
        res = cli("report", str(_results(tmp_path, **change)), "--out", str(tmp_path / "rep"))
        err = assert_clear_error(res, "res.jsonl:1")
        assert needle in err and "np." not in err
        assert not (tmp_path / "rep").exists()


def test_chat_stdin_not_utf8(cli, monkeypatch):
    """[4] `printf 'hello \\xe9' | culturellm chat - --model fake:x` crashed (UnicodeEncodeError)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hello \xe9"), errors="surrogateescape"))
    assert_clear_error(cli("chat", "-", "--model", "fake:x", "--no-progress"), "stdin", "0xe9")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("héllo".encode())))
    assert cli("chat", "-", "--model", "fake:x", "--no-progress").code == 0


# --- [5] caches with a wrong schema -----------------------------------------------------------------


def test_wrong_schema_caches_are_moved_aside(cli, tmp_path, fake_model):
    """[5] A responses.sqlite whose table lacks our columns: `cache clear` failed and the next command
    failed the same way. Now the file is moved aside (warning) and both work; embeddings too."""
    from culturellm.embed import EmbeddingStore
    from culturellm.llm.backend import SamplingParams
    from culturellm.llm.cache import CachingBackend, ResponseCache

    cache_dir = tmp_path / "home" / "cache"
    cache_dir.mkdir(parents=True)
    with sqlite3.connect(cache_dir / "responses.sqlite") as c:
        c.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT)")
        c.execute("INSERT INTO responses VALUES ('k', 'v')")
    res = cli("cache", "clear", "--yes")
    assert res.code == 0 and "moved aside" in res.err, res.err
    assert list(cache_dir.glob("responses.sqlite.corrupt-*"))
    cached = CachingBackend(fake_model, ResponseCache(cache_dir / "responses.sqlite"))
    out = cached.generate_detailed([[{"role": "user", "content": "x"}]], SamplingParams())
    assert out[0].text
    with sqlite3.connect(cache_dir / "embeddings.sqlite") as c:
        c.execute("CREATE TABLE embeddings (model TEXT, key TEXT)")
    store = EmbeddingStore(cache_dir / "embeddings.sqlite")
    assert store.get_many("m", ["a"]) == {}
    assert list(cache_dir.glob("embeddings.sqlite.corrupt-*"))


# --- [6] run --check builds every model it will use, and a run writes nothing before -------------------


@pytest.mark.parametrize(
    "extra, needle",
    [
        ('[augment]\njudge = "[/x]"\n', "augment.judge"),
        ('[models]\nembedder = "/no/such/embedder"\n', "models.embedder"),
        ('[models]\nbase = "fake:b"\n', "models.base"),
    ],
    ids=["judge", "embedder", "fake-base"],
)
def test_run_check_builds_every_model(cli, tmp_path, extra, needle):
    """[6] `run --check` passed these and the run then failed after writing config.toml, manifest.json
    and seeds/; now both refuse with one line and write nothing."""
    toml = RUN_TOML.replace("[augment]\n", extra) if "[augment]" in extra else RUN_TOML + extra
    (tmp_path / "t.toml").write_text(toml, encoding="utf-8")
    out = tmp_path / "r"
    assert_clear_error(cli("run", "t.toml", "--llm", "fake:a", "--out", str(out), "--check"), needle)
    assert_clear_error(cli("run", "t.toml", "--llm", "fake:a", "--out", str(out), "--no-progress"), needle)
    assert not out.exists()


# --- [7] credentials ---------------------------------------------------------------------------------


def test_credentials_are_stripped_from_urls(cli, tmp_path):
    """[7] `run --check` printed `user:password` and kept `?api_key=` in what it printed and stored."""
    from culturellm.errors import DataError, describe_error
    from culturellm.redact import redact_url

    url = "http://alice:hunter2@llm.example:8080/v1?api_key=SECRET1&key=SECRET2&token=SECRET3&model=x"
    assert redact_url(url) == (
        "http://llm.example:8080/v1?api_key=REDACTED&key=REDACTED&token=REDACTED&model=x"
    )
    assert redact_url("http://h/v1") == "http://h/v1"
    (tmp_path / "t.toml").write_text(RUN_TOML + f'[models]\nbase_url = "{url}"\n', encoding="utf-8")
    res = cli("run", "t.toml", "--llm", "fake:a", "--out", str(tmp_path / "r"), "--check")
    assert res.code == 0, res.err
    assert "llm.example" in res.out
    for secret in ("hunter2", "alice", "SECRET1", "SECRET2", "SECRET3"):
        assert secret not in res.out + res.err
    msg = describe_error(DataError(f"cannot reach {url}"))
    assert msg is not None and "SECRET" not in msg and "hunter2" not in msg


# --- [8] the review server --------------------------------------------------------------------------


@pytest.fixture
def review_app(tmp_path):
    d = tmp_path / "aug"
    d.mkdir()
    rows = [
        {"id": "s1", "question_id": "Q27", "step": "seed", "text": "a seed", "parent": None},
        {"id": "p1", "question_id": "Q27", "step": "paraphrase", "text": "a variant", "parent": "s1"},
    ]
    (d / "augmented.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return d


def test_review_server_checks_host_body_and_key(review_app):
    """[8] Any Host was accepted (DNS rebinding) and a 100 MB POST got 200."""
    from starlette.testclient import TestClient

    from culturellm.review.app import make_app

    rating = {"reviewer": "ann", "id": "p1", "rating": "same"}
    with TestClient(make_app(review_app), base_url="http://127.0.0.1:8765") as c:
        assert c.get("/api/items").status_code == 200
        assert c.get("/api/items", headers={"Host": "localhost:9"}).status_code == 200
        assert c.get("/api/items", headers={"Host": "evil.example:8765"}).status_code == 421
        assert c.post("/api/ratings", json=rating, headers={"Host": "evil.example"}).status_code == 421
        assert c.post("/api/ratings", content=b"x" * 200_000).status_code == 413
        chunks = (b"x" * 10_000 for _ in range(20))  # chunked: no Content-Length
        assert c.post("/api/ratings", content=chunks).status_code == 413
        assert c.post("/api/ratings", json=rating).status_code == 200
    with TestClient(make_app(review_app, host="10.1.2.3", api_key="k3y"), base_url="http://10.1.2.3") as c:
        assert c.get("/").status_code == 200  # the static page; it sends the key from #key=
        assert c.get("/api/items").status_code == 401
        assert c.get("/api/items", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/items", headers={"Authorization": "Bearer k3y"}).status_code == 200


def test_review_beyond_localhost_needs_a_key(cli, review_app):
    """[8] `review --host 0.0.0.0` without --api-key is refused before it serves."""
    assert_clear_error(cli("review", str(review_app), "--host", "0.0.0.0"), "--api-key")


# --- [9] numbers finite and in range ------------------------------------------------------------------


@pytest.mark.slow  # `augment import` loads the bundled embedder
def test_numbers_are_checked(cli, tmp_path):
    """[9] `augment import --t1 nan` switched the filter off; `seeds --width -5` mangled text; a WVS
    weight error showed `np.float64(inf)`; a non-UTF-8 import file's error did not name it."""
    f = tmp_path / "rel.jsonl"
    f.write_text(json.dumps({"q_id": "27", "q_content": "x"}) + "\n", encoding="utf-8")
    for value in ("nan", "inf", "2"):
        assert_clear_error(
            cli("augment", "import", str(f), "--out", str(tmp_path / "o"), "--t1", value), "--t1"
        )
    assert not (tmp_path / "o").exists()
    assert_clear_error(cli("seeds", "-c", "arabic", "--width", "-5"), "--width")
    w = tmp_path / "w.csv"
    w.write_text("B_COUNTRY_ALPHA,W_WEIGHT,Q27\nNGA,1e309,1\nNGA,1,2\n")
    err = assert_clear_error(cli("wvs", "import", str(w), "--no-progress"), "W_WEIGHT")
    assert "np." not in err
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"q_id": "27", "q_content": "caf\xe9"}\n')
    assert_clear_error(cli("augment", "import", str(latin), "--out", str(tmp_path / "o2")), "latin.jsonl")
