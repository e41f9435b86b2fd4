"""Shared test set-up: an isolated CULTURELLM_HOME per test session, shared converted-model cache,
the bundled release sample, the optional full WVS microdata (CULTURELLM_WVS_DIR), and the bundled model
loaded once per session. Nothing outside the repository is needed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs
import pytest

REPO = Path(__file__).resolve().parents[1]


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
def wvs_dir() -> Path:
    """Full WVS wave-7 microdata (one `<ISO3>.csv` per bundled country), only for the checks that the
    bundled aggregates are reproducible from it. Tests never read data from outside the repository
    unless CULTURELLM_WVS_DIR points at it (.ci/run sets it); otherwise they are skipped, with this
    reason in the summary."""
    value = os.environ.get("CULTURELLM_WVS_DIR")
    if not value:
        pytest.skip(
            "CULTURELLM_WVS_DIR is not set: the check that the bundled WVS aggregates are reproducible "
            "needs the full wave-7 microdata (CI sets it in .ci/run)"
        )
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"CULTURELLM_WVS_DIR={value}: not a directory")
    return path


@pytest.fixture(scope="session")
def release_fixtures() -> Path:
    """The bundled 30-row samples of the 60 CultureLLM evaluation files (the release's layout)."""
    from culturellm.evaluate.data import bundled_data_dir

    return bundled_data_dir()


@pytest.fixture(scope="session")
def bundled_model():
    """The bundled SmolLM2-135M-Instruct, loaded once per test session."""
    from culturellm.llm import load_model

    return load_model("bundled", cache=False)


@pytest.fixture(scope="session")
def embedder():
    from culturellm.embed import load_embedder

    return load_embedder("bundled")
