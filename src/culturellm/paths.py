"""Where culturellm keeps user data and caches.

`CULTURELLM_HOME` overrides all of them (tests point it at a temporary directory); otherwise platformdirs'
per-user data and cache directories are used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

APP = "culturellm"
V = TypeVar("V")


def data_dir() -> Path:
    """User data: imported WVS aggregates, user cultures and tasks."""
    home = os.environ.get("CULTURELLM_HOME")
    path = Path(home) / "data" if home else Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Caches that can be deleted at any time: converted models, LLM responses, embeddings."""
    home = os.environ.get("CULTURELLM_CACHE_DIR") or (
        str(Path(os.environ["CULTURELLM_HOME"]) / "cache") if os.environ.get("CULTURELLM_HOME") else None
    )
    path = Path(home) if home else Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_cache_dir() -> Path:
    """Converted model weights (GGUF -> safetensors). `CULTURELLM_MODEL_CACHE` overrides it; tests point
    it at the user's real cache so the conversion is shared between test runs."""
    env = os.environ.get("CULTURELLM_MODEL_CACHE")
    path = Path(env) if env else cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """Where unexpected errors' tracebacks go (platformdirs' per-user log directory, or
    `CULTURELLM_HOME/logs`)."""
    home = os.environ.get("CULTURELLM_HOME")
    path = Path(home) / "logs" if home else Path(platformdirs.user_log_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_data(name: str) -> Path:
    """A file bundled in culturellm/data."""
    return Path(__file__).parent / "data" / name


def layered(name: str, read: Callable[[Path], dict[str, V]]) -> dict[str, V]:
    """A registry (cultures.toml, tasks.toml): the bundled file `name` (read once per process),
    extended and overridden entry by entry by the user's file of that name in `data_dir()` (read on
    every call, so an edit shows at once)."""
    out: dict[str, V] = dict(_bundled(name, read))
    user = data_dir() / name
    if user.exists():
        out.update(read(user))
    return out


@functools.cache
def _bundled(name: str, read: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    return read(package_data(name))
