"""Issue #31, Build 4: every crash a hostile or careless user found becomes one clear `error:` line
with exit code 2. Each input is a case of the fuzz suite's kind (`hostile.check_case`: exit 0 or 2,
a 2 is exactly one `error:` line, nothing written outside the output roots, no pre-existing file
changed), each under its own time limit (pytest-timeout):

- damaged culture model directories (weights truncated, random, empty or missing; a torn
  `adapter_config.json`; an unknown `peft_type`), plain PEFT adapters and `culturellm.json` models,
  in `chat` and `serve`: named with what is wrong and how to fix it, before a base model loads;
- bad base URLs (a port that is not a number, an unclosed IPv6 bracket) in `chat`, `evaluate`, `run`
  and `run --check` (which used to say "configuration valid");
- `finetune --optim ../../x`: one line, not transformers' whole list in a traceback;
- `run -c 'arabic,../x'`: blames the culture, not `--name`;
- `OPENAI_API_KEY=sk-x culturellm chat hi -m bundled` (and a culture model directory) answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostile import STATS, FuzzStats, check_case, run_cli, snapshot
from serve_helpers import free_port

LIMIT_S = 120  # each case's time limit: a case that hangs (a server that starts anyway) fails


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    """This module's share of the fuzz counts (hostile.STATS), printed at its end like test_fuzz's."""
    start = dataclasses.replace(STATS)
    yield
    mine = FuzzStats(
        **{f.name: getattr(STATS, f.name) - getattr(start, f.name) for f in dataclasses.fields(STATS)}
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\ncrash cases (issue 31) " + mine.line(), flush=True)
    assert mine.crashes == 0 and mine.written_outside == 0 and mine.preexisting_changed == 0


@pytest.fixture
def sandbox(monkeypatch, capsys, tmp_path):
    """run(*ARGS): the CLI in-process inside tmp_path (CULTURELLM_HOME = tmp_path/home), checked as a
    fuzz case; returns the CliResult."""
    monkeypatch.setenv("CULTURELLM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CULTURELLM_CACHE_DIR", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*args: str, allowed: tuple[str, ...] = ("home/",), protect: bool = True):
        before = snapshot(tmp_path)
        res = run_cli(monkeypatch, capsys, *args)
        protected = tuple(p for p in before if protect or not p.startswith(allowed))
        check_case(res, before, snapshot(tmp_path), allowed=allowed, protected=protected)
        return res

    return run


def one_error(res) -> str:
    assert res.code == 2, (res.code, res.err[-2000:])
    return next(line for line in res.err_lines if line.startswith("error: "))


# --- damaged culture model directories ---------------------------------------------------------------

LORA = {
    "peft_type": "LORA",
    "task_type": "CAUSAL_LM",
    "r": 2,
    "lora_alpha": 8,
    "target_modules": ["q_proj"],
}


def _adapter(root: Path, modelref: bool) -> Path:
    """A well-formed (if untrained) LoRA adapter directory whose base is a model directory holding a
    config.json; with `modelref`, a culture model directory (culturellm.json naming the base)."""
    import numpy as np
    from safetensors.numpy import save_file

    base = root / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama"}))
    d = root / "model"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(LORA | {"base_model_name_or_path": str(base)}))
    save_file(
        {"base_model.model.lora_A.weight": np.zeros((2, 4), np.float32)}, str(d / "adapter_model.safetensors")
    )
    if modelref:
        ref = {"kind": "peft-adapter", "base": f"hf:{base}", "path": "."}
        (d / "culturellm.json").write_text(json.dumps(ref))
    return d


def _damage(d: Path, how: str) -> str:
    """Damage the adapter directory `d`; the name the error must hold."""
    weights = d / "adapter_model.safetensors"
    data = weights.read_bytes()
    if how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "random":
        weights.write_bytes(os.urandom(len(data)))
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "missing":
        weights.unlink()
        return "adapter_model.safetensors is missing"
    elif how == "bad-json":
        (d / "adapter_config.json").write_text('{"peft_type": ')
        return "adapter_config.json"
    elif how == "unknown-peft-type":
        cfg = json.loads((d / "adapter_config.json").read_text())
        (d / "adapter_config.json").write_text(json.dumps(cfg | {"peft_type": "WHATEVER"}))
        return "peft_type"
    return "adapter_model.safetensors"


DAMAGE = ["truncated", "random", "empty", "missing", "bad-json", "unknown-peft-type"]


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("command", ["chat", "serve"])
@pytest.mark.parametrize("modelref", [False, True], ids=["peft-dir", "culture-model"])
@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_adapter_is_one_line_naming_the_file(sandbox, tmp_path, command, modelref, how):
    """chat crashed in 6 ways (SafetensorError, HFValidationError, KeyError, JSONDecodeError) and serve
    in 2; now: the file, what is wrong, how to fix it, before any weights load."""
    d = _adapter(tmp_path, modelref)
    needle = _damage(d, how)
    args = ["chat", "hi", "-m", str(d), "--no-progress"] if command == "chat" else ["serve", "-m", str(d)]
    err = one_error(sandbox(*args, "--port", str(free_port())) if command == "serve" else sandbox(*args))
    assert needle in err and str(d) in err, err
    if how != "bad-json" or modelref:  # a plain adapter's torn config is read first to find its base
        assert "copy the adapter directory again" in err, err


# --- bad base URLs ----------------------------------------------------------------------------------

BAD_URLS = ["http://user:pass@127.0.0.1:abc/v1", "[::1", "http://[::1/v1", "ftp://127.0.0.1/v1"]
URL_COMMANDS = {
    "chat": ["chat", "hi", "-m", "openai:gpt-4o-mini", "--no-progress"],
    "evaluate": ["evaluate", "-m", "openai:gpt-4o-mini", "-c", "arabic", "--out", "ev", "--no-progress"],
    "run": ["run", "-c", "arabic", "-b", "openai:gpt-4o-mini", "--out", "r", "--no-progress"],
    "run --check": ["run", "-c", "arabic", "--out", "r", "--check"],
}


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("command", sorted(URL_COMMANDS))
@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_base_url_is_refused_where_the_config_is_checked(sandbox, tmp_path, command, url):
    """`InvalidURL` in chat, evaluate and run, after `run --check` said "configuration valid"."""
    res = sandbox(*URL_COMMANDS[command], "--base-url", url)
    err = one_error(res)
    assert "--base-url" in err and "URL" in err, err
    assert "pass@" not in err and not (tmp_path / "r").exists() and not (tmp_path / "ev").exists()


# --- finetune --optim, run -c -------------------------------------------------------------------------


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("optim", ["../../x", "adamw", ""])
def test_unknown_optimizer_is_one_short_line(sandbox, tmp_path, optim):
    (tmp_path / "train.jsonl").write_text("")
    err = one_error(sandbox("finetune", "--data", "train.jsonl", "--optim", optim, "--out", "ft"))
    assert "--optim" in err and "unknown optimizer" in err and len(err) < 400, err
    assert "paged_adamw_32bit" not in err  # not the whole list


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("cultures", [["arabic,../x"], ["arabic", "../x"], ["../../etc"]])
def test_unsafe_culture_blames_the_culture_not_the_name(sandbox, cultures):
    flags = [x for c in cultures for x in ("-c", c)]
    err = one_error(sandbox("run", *flags, "--out", "r", "--check"))
    assert "culture" in err and "--name" not in err, err


# --- the OpenAI key is not passed to local models --------------------------------------------------


@pytest.mark.slow  # loads the bundled model in a subprocess, as a user's shell does
@pytest.mark.timeout(600)
def test_openai_key_in_the_environment_does_not_break_local_chat(tmp_path):
    """`OPENAI_API_KEY=sk-x culturellm chat hi -m bundled` ended in TypeError (an api_key passed to
    LocalChatModel): most researchers have that variable exported."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-x", "CULTURELLM_HOME": str(tmp_path / "home")}
    env |= {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["chat", "hi", "-m", "bundled", "--max-tokens", "4", "--no-progress", "--no-cache"]
    res = subprocess.run(
        [sys.executable, "-m", "culturellm.cli", *args], capture_output=True, text=True, env=env, timeout=540
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() and "Traceback" not in res.stderr


@pytest.mark.slow  # loads a (tiny) model with its adapter
@pytest.mark.timeout(LIMIT_S)
def test_openai_key_in_the_environment_does_not_break_a_culture_model(
    sandbox, monkeypatch, tmp_path, tiny_base
):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = tiny_base.removeprefix("hf:")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"])
    )
    model.save_pretrained(tmp_path / "arabic")
    ref = {"kind": "peft-adapter", "base": tiny_base, "path": "."}
    (tmp_path / "arabic" / "culturellm.json").write_text(json.dumps(ref))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    torch.manual_seed(0)
    res = sandbox(
        "chat", "hi", "-m", str(tmp_path / "arabic"), "--max-tokens", "3", "--no-progress", "--no-cache"
    )
    assert res.code == 0, res.err[-2000:]


# --- Build 5: a key anywhere in a URL is redacted ----------------------------------------------------

KEY = "sk-proj-Zq8X3vT1bN6mW0cR4yL7"
HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
SECRET_URLS = {
    "path": f"http://127.0.0.1:9/{KEY}/v1",
    "fragment": f"http://127.0.0.1:9/v1#{KEY}",
    "query-value": f"http://127.0.0.1:9/v1?deployment=x&t={HF_TOKEN}",
    "user-info": f"http://user:{KEY}@127.0.0.1:9/v1",
    "hex-in-path": "http://127.0.0.1:9/0123456789abcdef0123456789abcdef/v1",
    "bad-port": f"http://127.0.0.1:abc/{KEY}/v1",
}


@pytest.mark.parametrize("where", sorted(SECRET_URLS))
def test_redact_url_removes_a_key_anywhere(where):
    from culturellm.redact import REDACTED, redact_text, redact_url

    url = SECRET_URLS[where]
    shown = redact_url(url)
    assert KEY not in shown and HF_TOKEN not in shown and "0123456789abcdef0123" not in shown, shown
    assert REDACTED in shown or where == "user-info", shown
    assert "127.0.0.1" in shown  # what is not a secret stays readable
    assert KEY not in redact_text(f"error: cannot reach {url}/chat/completions (refused)")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "https://x.openai.azure.com/openai/deployments/gpt-4o-mini/v1?api-version=2024",
    ],
)
def test_redact_url_keeps_ordinary_urls(url):
    from culturellm.redact import redact_url

    assert redact_url(url) == url


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("where", sorted(SECRET_URLS))
def test_run_check_never_prints_a_key_in_the_base_url(sandbox, where):
    """`run --check` prints the resolved configuration: a key in the URL's path or fragment was printed."""
    res = sandbox("run", "-c", "arabic", "--out", "r", "--check", "--base-url", SECRET_URLS[where])
    assert res.code in (0, 2), res.err
    assert KEY not in res.out + res.err and HF_TOKEN not in res.out + res.err


@pytest.mark.timeout(LIMIT_S)
def test_a_key_in_the_path_of_an_unreachable_server_is_not_printed(sandbox):
    """`error: cannot reach http://127.0.0.1:9/sk-.../v1/...` printed the key as given."""
    res = sandbox(
        "chat", "hi", "-m", "openai:gpt-4o-mini", "--no-progress", "--base-url", SECRET_URLS["path"]
    )
    assert "REDACTED" in one_error(res) and KEY not in res.out + res.err


# --- Build 6: one writer per output directory ----------------------------------------------------------

HOLD = """
import sys, time
from culturellm.outdir import claim
claim(sys.argv[1], sys.argv[2])  # what every writing command does first
print("claimed", flush=True)
time.sleep(600)
"""


def _holder(out: Path, kind: str) -> subprocess.Popen:
    """A second real process that claimed `out` (as a command does) and is still writing."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), kind], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    return proc


@pytest.mark.slow  # starts a second process
@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("kind", ["report", "run"])
def test_a_directory_another_process_writes_is_refused_then_taken_over(sandbox, tmp_path, kind):
    """Two runs on one --out both ran (and fine-tuned one model directory at once); now the second
    is one line naming the first's pid, and once the first is killed (-9: no cleanup) the lock is free."""
    (tmp_path / "res.jsonl").write_text(
        json.dumps({"task": "arabic/x", "model": "m", "macro_f1": 0.5}) + "\n"
    )
    out = tmp_path / "out"
    holder = _holder(out, kind)
    try:
        res = sandbox("report", "res.jsonl", "--out", "out", allowed=("home/", "out/"))
        err = one_error(res)
        assert f"pid {holder.pid}" in err and "another culturellm process" in err, err
        assert not (out / "report.md").exists()
        if kind == "run":  # a second `run` on the directory: refused before any stage
            args = ["run", "-c", "arabic", "--llm", "fake:x", "--out", "out", "--no-progress"]
            assert f"pid {holder.pid}" in one_error(sandbox(*args, allowed=("home/", "out/")))
        # a second real process is refused too
        cmd = [sys.executable, "-m", "culturellm.cli", "report", "res.jsonl", "--out", "out"]
        other = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=LIMIT_S)
        assert other.returncode == 2 and f"pid {holder.pid}" in other.stderr, other.stderr
    finally:
        holder.kill()  # SIGKILL: the lock is left as a crash leaves it
        holder.wait()
    res = sandbox("report", "res.jsonl", "--out", "out", allowed=("home/", "out/"), protect=False)
    if kind == "report":
        assert res.code == 0 and (out / "report.md").is_file(), res.err
    else:  # the run's directory accepts a report (no lock in the way now)
        assert res.code == 0, res.err


def test_a_command_releases_its_directory_when_it_ends(sandbox, tmp_path):
    """In one process (the in-process CLI, a notebook), a finished command leaves no lock behind."""
    from culturellm import dirlock

    (tmp_path / "res.jsonl").write_text(
        json.dumps({"task": "arabic/x", "model": "m", "macro_f1": 0.5}) + "\n"
    )
    assert sandbox("report", "res.jsonl", "--out", "out", allowed=("home/", "out/")).code == 0
    assert not dirlock._HELD


# --- Build 7: servers and the cache -------------------------------------------------------------------


@pytest.fixture
def busy_port():
    """A port some other program listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("command", ["serve", "review"])
def test_a_port_in_use_is_one_error_line(sandbox, tmp_path, busy_port, command):
    """`serve` and `review` exited 3 with uvicorn's log line; now one `error:` line, exit 2, and `serve`
    says so before it spends minutes loading its model."""
    aug = tmp_path / "aug"
    aug.mkdir()
    seed = {"id": "s", "question_id": "Q27", "step": "seed", "text": "t", "parent": None}
    (aug / "augmented.jsonl").write_text(json.dumps(seed) + "\n")
    args = ["serve", "-m", "bundled"] if command == "serve" else ["review", "aug"]
    err = one_error(sandbox(*args, "--port", str(busy_port)))
    assert f"127.0.0.1:{busy_port}" in err and "--port" in err, err


@pytest.mark.timeout(LIMIT_S)
@pytest.mark.parametrize("what", ["directory", "fifo"])
def test_cache_clear_removes_whatever_sits_at_the_cache_path(sandbox, tmp_path, what):
    """A directory where the cache file should be made every model call fail with 'cache clear removes
    it', and `cache clear` failed on it too."""
    path = tmp_path / "home" / "cache" / "responses.sqlite"
    path.parent.mkdir(parents=True)
    if what == "directory":
        (path / "sub").mkdir(parents=True)
        (path / "sub" / "x").write_text("x")
    else:
        os.mkfifo(path)
    one_error(sandbox("cache", "stats"))
    res = sandbox("cache", "clear", "--yes", allowed=("home/",), protect=False)
    assert res.code == 0 and "removed" in res.out, res.err
    assert not path.exists() and not path.is_symlink()
    assert sandbox("cache", "stats", "--json").code == 0 and path.is_file()


def _chunked_status(url: str, total: int) -> int:
    """POST a chunked body of `total` bytes on a raw socket; the reply's status code."""
    import socket

    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        try:
            s.sendall(head)
            for _ in range(total // 65536):
                s.sendall(piece)
            s.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed before the whole body was sent
            pass
        reply = b""
        while b"\r\n" not in reply:
            got = s.recv(4096)
            if not got:
                break
            reply += got
    return int(reply.split(b" ", 2)[1])


@pytest.mark.slow  # starts a server (tiny random model)
@pytest.mark.timeout(600)
def test_serve_interleaves_requests_and_refuses_big_chunked_bodies(tmp_path, tiny_model_dir):
    """One request of 256 prompts x 16 tokens held the worker for 270 s while a one-prompt request
    waited behind it; now a request that arrives while it runs is answered before it ends. Chunked
    bodies over --max-body-bytes got 400; now 413."""
    import threading

    from serve_helpers import http, start_server, stop

    tiny = tiny_model_dir(tmp_path / "tiny")
    proc, url = start_server("--model", tiny, "--name", "tiny")
    try:
        assert _chunked_status(url, 2 << 20) == 413  # over the 1 MiB default
        done: list[str] = []
        prompts = [f"Question {i}: what matters most in life?" for i in range(256)]
        big = {"model": "tiny", "prompt": prompts, "max_tokens": 16, "temperature": 0}
        small = {"model": "tiny", "prompt": "Hello", "max_tokens": 16, "temperature": 0}

        def call(tag: str, payload: dict) -> None:
            r = http("POST", f"{url}/completions", payload, timeout=540)
            assert r.status_code == 200, r._body[:500]
            done.append(tag)

        first = threading.Thread(target=call, args=("big", big))
        first.start()
        health = url.removesuffix("/v1") + "/health"
        while not http("GET", health).json()["busy"]:
            assert first.is_alive(), "the big request ended before it was seen running"
        call("small", small)  # sent while the big one runs
        first.join(540)
        assert done == ["small", "big"], done
    finally:
        stop(proc)
