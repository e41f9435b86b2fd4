"""Hub ids (`hf:ORG/NAME[@REVISION]`) resolved through huggingface_hub: offline from a temporary HF_HOME
that holds a tiny random model in the real Hub cache layout (blobs, snapshots/<commit> links,
refs/main), and online from a minimal Hub on 127.0.0.1 (HF_ENDPOINT) serving the same model."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from culturellm.errors import CultureLLMError
from culturellm.llm import parse_spec
from serve_helpers import cli_process

REPO = "tiny-org/tiny-chat"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory, tiny_model_dir) -> Path:
    """HF_HOME/hub/models--tiny-org--tiny-chat as huggingface_hub writes it: each file a blob named by
    its hash, linked from snapshots/<commit>/, and refs/main naming the commit."""
    home = tmp_path_factory.mktemp("hf-home")
    src = tmp_path_factory.mktemp("tiny-src")
    tiny_model_dir(src)
    repo = home / "hub" / f"models--{REPO.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, repo / "blobs" / digest)
        (snap / f.name).symlink_to(Path("..") / ".." / "blobs" / digest)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return home


@pytest.fixture
def offline_hub(hf_home, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_home


def _cli(args: list[str], hf_home: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "CULTURELLM_NO_CACHE": "1",
        **env_vars,
    }
    env.pop("HF_HUB_CACHE", None)
    return cli_process(*args, env=env)


def test_hub_ids_parse_without_touching_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the relative bad paths below must not exist where the suite runs
    spec = parse_spec(f"hf:{REPO}@v1.0")
    assert (spec.kind, spec.name, spec.revision, spec.path, spec.local) == ("hf", REPO, "v1.0", None, True)
    assert parse_spec(f"hf:{REPO}").revision is None
    for bad in ("hf:/no/such/dir", "hf:a/b/c", "hf:../x"):
        with pytest.raises(CultureLLMError, match="neither a local model directory nor a Hub id"):
            parse_spec(bad)


def test_hub_id_resolves_from_the_cache_offline(offline_hub) -> None:
    from culturellm.llm.hub import hub_base
    from culturellm.llm.local_pool import local_fingerprint
    from culturellm.llm.registry import weights_dir

    snap = offline_hub / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    for text in (f"hf:{REPO}", f"hf:{REPO}@main", f"hf:{REPO}@{COMMIT}"):
        assert weights_dir(parse_spec(text)) == snap
    assert local_fingerprint(parse_spec(f"hf:{REPO}")) == local_fingerprint(
        parse_spec(f"hf:{snap}")
    )  # same weights, same key
    # what a model trained on it records: the Hub id, also when the base was named by its snapshot path
    assert hub_base(parse_spec(f"hf:{REPO}")) == (f"hf:{REPO}", REPO)
    assert hub_base(parse_spec(f"hf:{snap}")) == (f"hf:{REPO}@{COMMIT}", REPO)
    assert hub_base(parse_spec("bundled")) == ("bundled", None)
    with pytest.raises(CultureLLMError, match=r"not in the Hugging Face cache .* HF_HUB_OFFLINE=1"):
        weights_dir(parse_spec("hf:tiny-org/missing"))
    with pytest.raises(CultureLLMError, match="not in the Hugging Face cache"):
        weights_dir(parse_spec(f"hf:{REPO}@v9"))


@pytest.mark.slow
def test_chat_with_a_hub_id_offline(hf_home) -> None:
    """`HF_HUB_OFFLINE=1 culturellm chat --model hf:ORG/NAME "hi"` answers from the cache."""
    res = _cli(["chat", "--model", f"hf:{REPO}", "--max-tokens", "4", "hi"], hf_home)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    res = _cli(["chat", "--model", "hf:tiny-org/missing", "hi"], hf_home)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "hf:tiny-org/missing: not in the Hugging Face cache" in lines[0], res.stderr


@pytest.mark.slow
def test_a_culture_model_trained_on_a_hub_base_records_the_hub_id(offline_hub, tmp_path) -> None:
    from culturellm.finetune import FinetuneConfig, finetune
    from culturellm.jsonio import write_jsonl
    from culturellm.llm.modelref import read_modelref
    from culturellm.prompts import culture_system_prompt, survey_messages

    msgs = survey_messages(
        "Family is very important", {"1": "Agree", "2": "Disagree"}, culture_system_prompt("Arabic")
    )
    write_jsonl(tmp_path / "train.jsonl", [{"messages": [*msgs, {"role": "assistant", "content": "1"}]}] * 4)
    cfg = FinetuneConfig.from_preset("cpu-small", max_steps=1, batch_size=4)
    ref_file = finetune(tmp_path / "train.jsonl", f"hf:{REPO}", tmp_path / "m", cfg, progress=False)
    assert read_modelref(ref_file).base == f"hf:{REPO}"
    card = (tmp_path / "m" / "README.md").read_text()
    assert f"base_model: {json.dumps(REPO)}" in card
    assert parse_spec(str(tmp_path / "m")).base == parse_spec(f"hf:{REPO}")  # loads anywhere it is cached


class _Hub(BaseHTTPRequestHandler):
    """The three calls snapshot_download makes: revision info, the file tree, and each file (HEAD, GET)."""

    files: ClassVar[dict[str, bytes]] = {}
    seen: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def _reply(self, body: bytes, headers: dict[str, str], code: int = 200) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.seen.append(path)
        api, files = f"/api/models/{REPO}", self.files
        if re.fullmatch(rf"{api}/revision/[^/]+", path):
            info = {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
            return self._reply(json.dumps(info).encode(), {"Content-Type": "application/json"})
        if re.fullmatch(rf"{api}/tree/{COMMIT}", path):
            tree = [
                {"type": "file", "oid": hashlib.sha1(b).hexdigest(), "size": len(b), "path": f}
                for f, b in files.items()
            ]
            return self._reply(json.dumps(tree).encode(), {"Content-Type": "application/json"})
        m = re.fullmatch(rf"/{REPO}/resolve/{COMMIT}/(.+)", path)
        if m and m[1] in files:
            etag = hashlib.sha256(files[m[1]]).hexdigest()
            return self._reply(files[m[1]], {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'})
        self._reply(b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, 404)

    do_HEAD = do_GET


@pytest.mark.slow
def test_a_hub_id_downloads_when_online(hf_home, tmp_path) -> None:
    """Online (a Hub on 127.0.0.1): the config, tokenizer and safetensors are downloaded into the cache
    (not the README or pickled weights), the model answers, and then answers offline from the cache."""
    snap = hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    _Hub.files = {f.name: f.read_bytes() for f in snap.iterdir()}
    _Hub.files.update({"README.md": b"# tiny", "pytorch_model.bin": b"not wanted"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    online = {"HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "HF_HUB_OFFLINE": "0"}
    home = tmp_path / "empty-hf-home"
    try:
        res = _cli(["chat", "--model", f"hf:{REPO}", "--max-tokens", "4", "hi"], home, **online)
        assert res.returncode == 0, res.stderr[-2000:]
        res = _cli(["chat", "--model", "hf:tiny-org/missing", "hi"], home, **online)
        assert res.returncode == 2 and "hf:tiny-org/missing: no such model on the Hub" in res.stderr
    finally:
        server.shutdown()
    got = home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert sorted(f.name for f in got.iterdir()) == sorted(
        set(_Hub.files) - {"README.md", "pytorch_model.bin"}
    )
    assert f"/{REPO}/resolve/{COMMIT}/model.safetensors" in _Hub.seen
    res = _cli(["chat", "--model", f"hf:{REPO}", "--max-tokens", "4", "hi"], home)  # offline now
    assert res.returncode == 0, res.stderr[-2000:]
