"""A small Hugging Face Hub on 127.0.0.1 for tests: the calls huggingface_hub's real `HfApi`,
`hf_hub_download`, `snapshot_download` and `HfFileSystem` (datasets) make, kept in memory.

Upload: `POST /api/repos/create`, `POST /api/{type}s/{repo}/preupload/{rev}` (LFS for `*.safetensors`,
`*.parquet` and large files), `POST /{prefix}{repo}.git/info/lfs/objects/batch` (basic transfer) with
the `PUT` of each object to the href it returns, `POST /api/{type}s/{repo}/commit/{rev}` (ndjson),
`POST /api/{type}s/{repo}/branch/{branch}`. Xet is not spoken: clients run with HF_HUB_DISABLE_XET=1,
so huggingface_hub uses the LFS protocol (it does whenever hf_xet is absent).

Download: `GET /api/{type}s/{repo}[/revision/{rev}]` (repo info, siblings), `GET .../tree/{rev}[/{path}]`,
`POST .../paths-info/{rev}`, and `GET|HEAD /{prefix}{repo}/resolve/{rev}/{path}` with the headers
`hf_hub_download` reads (X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, Content-Length).

Auth: every write needs `Authorization: Bearer <token>` with a token in `LocalHub.tokens` (else 401).
Faults: `hub.fail(pattern, status)` answers the next request whose method and path match `pattern` with
`status` (e.g. 403, 409, 500); `status=0` drops the connection (an LFS PUT: after reading half the body).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
REPO = r"(?P<repo>[^/]+/[^/]+?)"


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> path -> bytes
    lfs: dict[str, str] = field(default_factory=dict)  # path -> sha256 (files stored as LFS)


class LocalHub:
    """The Hub's state (repos, LFS objects), its faults and its request log; `start()` serves it."""

    def __init__(self, tokens: tuple[str, ...] = ("hf_test_token",)) -> None:
        self.tokens = set(tokens)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.objects: dict[str, bytes] = {}
        self.faults: list[tuple[str, int]] = []
        self.log: list[str] = []
        self.cards: list[dict[str, Any]] = []  # the card metadata validate-yaml accepted
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LocalHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def fail(self, pattern: str, status: int) -> None:
        """Answer the next request matching `pattern` ("METHOD path-regex") with `status` (0: drop)."""
        self.faults.append((pattern, status))

    def files(self, repo_id: str, rev: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        repo = self.repos[(repo_type, repo_id)]
        return repo.commits[repo.branches.get(rev, rev)]

    def take_fault(self, method: str, path: str) -> int | None:
        with self.lock:
            for i, (pattern, status) in enumerate(self.faults):
                if re.search(pattern, f"{method} {path}"):
                    del self.faults[i]
                    return status
        return None


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    # ---------------------------------------------------------------------------------------------
    # plumbing

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, code: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if error_code:
            headers["X-Error-Code"] = error_code
        self._json({"error": message}, code, headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.hub.tokens

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, f"Repository Not Found for url: {self.path}", "RepoNotFound")
            return None
        if repo.private and not self._authorized():
            self._error(401, "Invalid username or password.", "RepoNotFound")
            return None
        return repo

    def _commit(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        sha = repo.branches.get(rev) or (rev if rev in repo.commits else None)
        if sha is None:
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return sha

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        self.hub.log.append(f"{self.command} {path}")
        status = self.hub.take_fault(self.command, path)
        if status == 0:
            if self.command == "PUT":
                self.rfile.read(int(self.headers.get("Content-Length") or 0) // 2)
            self.close_connection = True
            self.connection.shutdown(2)  # a dropped connection: no reply at all
            return
        if status is not None:
            self._body()
            return self._error(status, f"injected {status}", "Forbidden" if status == 403 else None)
        for method, pattern, handler in ROUTES:
            m = re.fullmatch(pattern, path)
            if m and self.command in method:
                return handler(self, **{k: unquote(v) for k, v in m.groupdict().items() if v is not None})
        self._body()
        self._error(404, f"no route {self.command} {path}")

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    # ---------------------------------------------------------------------------------------------
    # writes

    def create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization')}/{body['name']}"
        url = f"{self.hub.url}/{PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:  # the Hub's 409 names the existing repo
            msg = "You already created this model repo"
            return self._json({"error": msg, "url": url}, 409, {"X-Error-Message": msg})
        sha = _sha("init", repo_id)
        repo = Repo(private=body.get("visibility") == "private" or bool(body.get("private")))
        repo.branches["main"], repo.commits[sha] = sha, {".gitattributes": b"*.safetensors filter=lfs\n"}
        self.hub.repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id})

    def preupload(self, t: str, repo: str, rev: str) -> None:
        body = json.loads(self._body())
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        if (r := self._repo(t, repo)) is None or self._commit(r, rev) is None:
            return None
        lfs = re.compile(r".*\.(safetensors|parquet|bin|pt)$")
        files = [
            {
                "path": f["path"],
                "shouldIgnore": False,
                "oid": None,
                "uploadMode": "lfs" if lfs.match(f["path"]) or f["size"] > 10_000_000 else "regular",
            }
            for f in body["files"]
        ]
        self._json({"files": files, "commitOid": self._commit(r, rev)})

    def lfs_batch(self, prefix: str, repo: str) -> None:
        body = json.loads(self._body())
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.objects:  # already stored: no actions, nothing to upload
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._json(
            {"transfer": "basic", "objects": objects},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "sha256 mismatch")
        self.hub.objects[oid] = data
        self._send(200)

    def commit(self, t: str, repo: str, rev: str) -> None:
        lines = [json.loads(x) for x in self._body().splitlines() if x.strip()]
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        if (r := self._repo(t, repo)) is None or (parent := self._commit(r, rev)) is None:
            return None
        files, lfs = dict(r.commits[parent]), dict(r.lfs)
        for op in lines:
            v = op["value"]
            if op["key"] == "file":
                files[v["path"]] = base64.b64decode(v["content"])
                lfs.pop(v["path"], None)
            elif op["key"] == "lfsFile":
                if v["oid"] not in self.hub.objects:
                    return self._error(400, f"LFS object {v['oid']} was never uploaded")
                files[v["path"]], lfs[v["path"]] = self.hub.objects[v["oid"]], v["oid"]
            elif op["key"] == "deletedFile":
                files.pop(v["path"], None)
        sha = _sha(parent, json.dumps(lines, sort_keys=True))
        r.commits[sha], r.lfs = files, lfs
        r.branches[unquote(rev)] = sha
        url = f"{self.hub.url}/{PREFIX[t]}{repo}/commit/{sha}"
        self._json({"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def branch(self, t: str, repo: str, branch: str) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        if (r := self._repo(t, repo)) is None:
            return None
        if branch in r.branches:
            return self._error(409, f"Reference already exists: refs/heads/{branch}")
        start = self._commit(r, body.get("startingPoint") or "main")
        if start is not None:
            r.branches[branch] = start
            self._json({})

    # ---------------------------------------------------------------------------------------------
    # reads

    def info(self, t: str, repo: str, rev: str = "main") -> None:
        if (r := self._repo(t, repo)) is None or (sha := self._commit(r, rev)) is None:
            return None
        files = r.commits[sha]
        siblings = [{"rfilename": p, "size": len(b)} for p, b in sorted(files.items())]
        self._json(
            {
                "id": repo,
                "_id": repo,
                "sha": sha,
                "private": r.private,
                "siblings": siblings,
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "lastModified": "2026-01-01T00:00:00.000Z",
            }
        )

    def _entry(self, r: Repo, files: dict[str, bytes], p: str) -> dict[str, Any]:
        if p in files:
            e: dict[str, Any] = {"type": "file", "path": p, "size": len(files[p]), "oid": _git_oid(files[p])}
            if p in r.lfs:
                e["lfs"] = {"oid": r.lfs[p], "size": len(files[p]), "pointerSize": 134}
            return e
        return {"type": "directory", "path": p, "oid": _sha("dir", p), "size": 0}

    def tree(self, t: str, repo: str, rev: str, path: str = "") -> None:
        if (r := self._repo(t, repo)) is None or (sha := self._commit(r, rev)) is None:
            return None
        files = r.commits[sha]
        recursive = parse_qs(urlsplit(self.path).query).get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        names: set[str] = set()
        for p in files:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")
            for i in range(1, len(parts) + 1 if recursive else 2):
                names.add(prefix + "/".join(parts[:i]))
        if prefix and not names:
            return self._error(404, f"no such path {path}", "EntryNotFound")
        self._json([self._entry(r, files, p) for p in sorted(names)])

    def paths_info(self, t: str, repo: str, rev: str) -> None:
        raw = self._body().decode()
        form = parse_qs(raw)
        if (r := self._repo(t, repo)) is None or (sha := self._commit(r, rev)) is None:
            return None
        files = r.commits[sha]
        dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        paths = form.get("paths", [])
        if not paths and raw.startswith("{"):
            paths = json.loads(raw).get("paths", [])
        self._json([self._entry(r, files, p) for p in paths if p in files or p in dirs])

    def resolve(self, prefix: str, repo: str, rev: str, path: str) -> None:
        t = {"": "model", "datasets/": "dataset", "spaces/": "space"}[prefix]
        if (r := self._repo(t, repo)) is None or (sha := self._commit(r, rev)) is None:
            return None
        files = r.commits[sha]
        if path not in files:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound")
        data = files[path]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{_git_oid(data)}"', "Accept-Ranges": "bytes"}
        if path in r.lfs:
            headers.update({"X-Linked-Etag": f'"{r.lfs[path]}"', "X-Linked-Size": str(len(data))})
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng:
            end = int(rng[2]) if rng[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {rng[1]}-{end}/{len(data)}"
            return self._send(206, data[int(rng[1]) : end + 1], headers)
        self._send(200, data, headers)

    def validate_yaml(self) -> None:
        """The card's YAML header must parse to a mapping (and its model-index to eval results)."""
        import yaml
        from huggingface_hub.repocard_data import model_index_to_eval_results

        body = json.loads(self._body())
        m = re.match(r"^---\n(.*?)\n---", body.get("content", ""), re.S)
        try:
            meta = yaml.safe_load(m[1]) if m else {}
            assert isinstance(meta, dict), "metadata is not a mapping"
            if "model-index" in meta:
                model_index_to_eval_results(meta["model-index"])
        except Exception as e:
            return self._error(400, f"invalid metadata: {e}")
        self.hub.cards.append(meta)
        self._json({"errors": [], "warnings": []})

    def whoami(self) -> None:
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        self._json({"type": "user", "name": "tester", "orgs": [{"name": "culture-org"}], "auth": {}})


def _sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


_T = r"(?P<t>model|dataset|space)s"
_REV = r"(?P<rev>[^/]+)"
ROUTES: list[tuple[tuple[str, ...], str, Any]] = [
    (("POST",), r"/api/repos/create", _Handler.create_repo),
    (("GET",), r"/api/whoami-v2", _Handler.whoami),
    (("POST",), r"/api/validate-yaml", _Handler.validate_yaml),
    (("POST",), rf"/api/{_T}/{REPO}/preupload/{_REV}", _Handler.preupload),
    (("POST",), rf"/api/{_T}/{REPO}/commit/{_REV}", _Handler.commit),
    (("POST",), rf"/api/{_T}/{REPO}/branch/(?P<branch>[^/]+)", _Handler.branch),
    (("POST",), rf"/(?P<prefix>(?:datasets/)?){REPO}\.git/info/lfs/objects/batch", _Handler.lfs_batch),
    (("PUT",), r"/lfs-upload/(?P<oid>[0-9a-f]{64})", _Handler.lfs_put),
    (("GET",), rf"/api/{_T}/{REPO}/revision/{_REV}", _Handler.info),
    (("GET",), rf"/api/{_T}/{REPO}/tree/{_REV}(?:/(?P<path>.*))?", _Handler.tree),
    (("POST",), rf"/api/{_T}/{REPO}/paths-info/{_REV}", _Handler.paths_info),
    (("GET",), rf"/api/{_T}/{REPO}", _Handler.info),
    (("GET", "HEAD"), rf"/(?P<prefix>(?:datasets/)?){REPO}/resolve/{_REV}/(?P<path>.+)", _Handler.resolve),
]
