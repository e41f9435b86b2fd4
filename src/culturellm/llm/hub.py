"""Hugging Face Hub ids as model specs: `hf:ORG/NAME[@REVISION]`.

A Hub id resolves through huggingface_hub to a snapshot directory of the local Hugging Face cache
(`HF_HOME`/hub, or `HF_HUB_CACHE`): from the cache alone when `HF_HUB_OFFLINE=1`, downloading what is
missing otherwise (config, tokenizer and safetensors weights; `*.bin` weights only for a repository
without safetensors). A model trained on a Hub base records the Hub id (`hub_base`), so a culture model
names a base that loads on any machine with that model in its cache.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from culturellm.errors import CultureLLMError
from culturellm.llm.spec import ModelSpec

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
REVISION = re.compile(r"^[\w][\w./-]*$")
FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "tokenizer*"]
SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<sha>[0-9a-f]{40})/?$")


def split_hub_id(text: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) for `ORG/NAME[@REVISION]`, else None."""
    repo, _, revision = text.partition("@")
    if not REPO_ID.match(repo) or ".." in repo or (revision and not REVISION.match(revision)):
        return None
    return repo, revision or None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """The Hub cache the resolution reads (and writes), from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def snapshot(repo: str, revision: str | None = None) -> Path:
    """The local snapshot directory of a Hub model or adapter repository (downloaded when online and
    not cached; once per process for the same repo, revision, cache and mode)."""
    return _snapshot(repo, revision, str(cache_dir()), offline())


@functools.lru_cache(maxsize=64)
def _snapshot(repo: str, revision: str | None, cache_str: str, local_only: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    name = f"hf:{repo}" + (f"@{revision}" if revision else "")
    cache = Path(cache_str)
    try:
        get = functools.partial(
            snapshot_download, repo, revision=revision, cache_dir=cache, local_files_only=local_only
        )
        path = Path(get(allow_patterns=FILES))
        if not local_only and not any(path.glob("*.safetensors")):
            path = Path(get(allow_patterns=[*FILES, "*.bin"]))  # a repository with pickled weights only
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE=1" if local_only else "the Hub cannot be reached"
        raise CultureLLMError(
            f"{name}: not in the Hugging Face cache {cache} and {why}; download it once online "
            f"(unset HF_HUB_OFFLINE) or give a local model directory"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise CultureLLMError(f"{name}: {_hub_error(e, repo, revision)}") from None
    return path


def _hub_error(e: Exception, repo: str, revision: str | None) -> str:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(e, GatedRepoError):
        return "a gated repository; accept its terms on the Hub and log in (`hf auth login`)"
    if isinstance(e, RevisionNotFoundError):
        return f"the Hub has no revision '{revision}' of {repo}"
    if isinstance(e, RepositoryNotFoundError):
        return "no such model on the Hub (or it is private: log in with `hf auth login`)"
    return f"cannot download ({type(e).__name__}: {e})"


def hub_id_of(path: Path) -> tuple[str, str] | None:
    """(repo id, commit) when `path` is a snapshot directory of a Hub cache, else None."""
    m = SNAPSHOT.search(str(Path(path).resolve()).replace(os.sep, "/")) or SNAPSHOT.search(str(path))
    return (f"{m['org']}/{m['name']}", m["sha"]) if m else None


def hub_base(spec: ModelSpec) -> tuple[str, str | None]:
    """What a model trained on `spec` records as its base: (a spec that loads it anywhere, its Hub repo
    id or None). A Hub id stays itself; a snapshot directory of a Hub cache becomes `hf:ORG/NAME@COMMIT`;
    anything else stays as written."""
    if spec.kind == "hf" and spec.name:
        return spec.text, spec.name
    found = hub_id_of(spec.path) if spec.path is not None and spec.adapter is None else None
    if found is None:
        return spec.text, None
    repo, commit = found
    return f"hf:{repo}@{commit}", repo
