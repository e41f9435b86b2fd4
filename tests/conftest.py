"""Shared test set-up: an isolated CULTURELLM_HOME per test session, shared converted-model cache,
paths to the shared fixtures, and the bundled model loaded once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="culturellm-home-"))
    os.environ["CULTURELLM_HOME"] = str(home)
    os.environ.pop("CULTURELLM_CACHE_DIR", None)
    # Converting the bundled GGUF takes ~20 s: share the converted copy between test runs.
    os.environ.setdefault(
        "CULTURELLM_MODEL_CACHE", str(Path(platformdirs.user_cache_dir("culturellm")) / "models")
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (tests expect ../shared beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def wvs_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "wvs" / "wave7"


@pytest.fixture(scope="session")
def release_fixtures(shared_dir: Path) -> Path:
    """Stratified 30-row samples of the 60 CultureLLM evaluation files (same relative paths)."""
    return shared_dir / "fixtures" / "culturellm-data"


@pytest.fixture(scope="session")
def bundled_model():
    """The bundled SmolLM2-135M-Instruct, loaded once per test session."""
    from culturellm.llm import load_model

    return load_model("bundled", cache=False)


@pytest.fixture(scope="session")
def embedder():
    from culturellm.embed import load_embedder

    return load_embedder("bundled")
