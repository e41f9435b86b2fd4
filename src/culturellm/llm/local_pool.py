"""Memoised loading of local chat models: one `LocalChatModel` per spec, device, dtype and device map
per process, and the fingerprint of the weights it loaded (what the response cache keys on).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturellm.llm.loading import load_local, resolve_device, resolve_dtype
from culturellm.llm.local import LocalChatModel
from culturellm.llm.registry import resolve_spec, weights_dir
from culturellm.llm.spec import ModelSpec


def local_fingerprint(spec: ModelSpec) -> str:
    """A short hash of the weight files a local spec loads (names, sizes, mtimes), so the response
    cache never answers for a re-trained adapter or model from entries of its previous version."""
    import hashlib

    spec = resolve_spec(spec)
    if spec.adapter is not None and spec.base is not None:
        return f"{local_fingerprint(spec.base)}+{_hash_dirs([spec.adapter])}"
    return hashlib.sha256(_hash_dirs([weights_dir(spec)]).encode()).hexdigest()[:12]


def _hash_dirs(dirs: Sequence[Path]) -> str:
    import hashlib

    h = hashlib.sha256()
    for d in dirs:
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".model", ".jinja"):
                st = f.stat()
                h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


LOAD_OPTIONS = ("device", "dtype", "device_map", "quantization_config")  # the rest are LocalChatModel options
_LOADED: dict[tuple[str, str, str, str], LocalChatModel] = {}
_LOAD_LOCK = threading.Lock()


def load_local_chat(spec: ModelSpec, **options: Any) -> LocalChatModel:
    """A `LocalChatModel` for a parsed local spec, loaded once per process (memoised on the spec and the
    device, dtype and device map it resolves to); adapters are merged into their base for inference.
    Options: `device`, `dtype`, `device_map` (see `load_local`), and LocalChatModel's (`batch_size`...).
    """
    spec = spec.with_options(**options) if options else spec
    load = {k: v for k, v in spec.options.items() if k in LOAD_OPTIONS and v is not None}
    device = resolve_device(load.get("device"))
    dtype = str(resolve_dtype(load.get("dtype"), device)).removeprefix("torch.")
    key = (spec.text, device, dtype, repr(load.get("device_map")))
    with _LOAD_LOCK:
        if key not in _LOADED:
            t0 = time.perf_counter()
            model, tokenizer = load_local(spec.with_options(device=device, dtype=dtype), merge=True)
            rest = {k: v for k, v in spec.options.items() if k not in LOAD_OPTIONS}
            if rest.get("batch_size") in (None, "auto"):  # from the free memory of the accelerator
                from culturellm.llm.memory import auto_batch_size

                rest["batch_size"] = auto_batch_size(model, device)
            chat = LocalChatModel(model, tokenizer, name=spec.text, **rest)
            chat.device_name, chat.dtype_name = device, dtype
            suffix = f":{dtype}" if dtype != "float32" else ""  # fp32 keys match earlier versions' entries
            chat.model_id = f"{spec.text}@{local_fingerprint(spec)}{suffix}"
            chat.load_seconds = time.perf_counter() - t0
            _LOADED[key] = chat
        return _LOADED[key]
