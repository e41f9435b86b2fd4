"""The built-in model spec kinds, registered the way a plugin registers its own: `register_kinds` is
the first entry point the registry loads (`culturellm.llm.registry.BUILTIN`).

Tried in this order: `hf:PATH`, the bundled models by name, `openai:MODEL`, `fake:NAME`, then a
directory or file: a culture model (culturellm.json), a HF model directory or a plain PEFT adapter
directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError, DataError
from culturellm.llm.modelref import MODELREF_FILE, find_modelref, read_modelref
from culturellm.llm.registry import SpecKind, parse_spec, unknown_spec
from culturellm.llm.spec import ModelSpec


def register_kinds(register: Callable[[SpecKind], None]) -> None:
    """Register the built-in kinds (the same hook a plugin's entry point provides)."""
    from culturellm.llm.convert import BUNDLED

    hf_form = (
        "hf:ORG/NAME[@REVISION] or hf:PATH (a Hugging Face Hub id, a model or a PEFT adapter such as a "
        "published culture model, from the HF cache or downloaded when online; or a local model directory)"
    )
    register(SpecKind("hf", (hf_form,), _parse_hf, _load_local, _hf_weights, _resolve_hf))
    for entry in BUNDLED.values():
        form = f"{entry.name} ({entry.description}, offline)"
        register(SpecKind(entry.name, (form,), _parse_bundled, _load_local, _bundled_weights))
    register(
        SpecKind(
            "openai",
            ("openai:MODEL (any OpenAI-compatible server; --base-url / OPENAI_BASE_URL, OPENAI_API_KEY)",),
            _parse_prefixed("openai", "a model name, e.g. openai:gpt-4o-mini"),
            _load_openai,
        )
    )
    register(
        SpecKind(
            "fake",
            ("fake:NAME (deterministic replies and scores from a hash of the request; no weights)",),
            _parse_prefixed("fake", "a name, e.g. fake:demo"),
            _load_fake,
        )
    )
    register(
        SpecKind(
            "dir",
            (
                "PATH (a culture model: a directory/file with culturellm.json; a HF model directory; "
                "a PEFT adapter directory)",
            ),
            _parse_dir,
            _load_local,
            _dir_weights,
        )
    )


# --------------------------------------------------------------------------------------------------
# Parsers


def _parse_prefixed(kind: str, needs: str) -> Callable[[str], ModelSpec | None]:
    def parse(text: str) -> ModelSpec | None:
        if not text.startswith(f"{kind}:"):
            return None
        name = text[len(kind) + 1 :].strip()
        if not name:
            raise unknown_spec(text, f"{kind}: needs {needs}")
        return ModelSpec(text, kind, name=name)

    return parse


def _parse_bundled(text: str) -> ModelSpec | None:
    from culturellm.llm.convert import BUNDLED

    return ModelSpec(text, text, name=text) if text in BUNDLED else None


def _parse_hf(text: str) -> ModelSpec | None:
    """`hf:PATH` (a local model directory wins over a Hub id spelled the same) or `hf:ORG/NAME[@REV]`
    (resolved from the Hugging Face cache when loaded, see culturellm.llm.hub)."""
    from culturellm.llm.hub import split_hub_id

    if not text.startswith("hf:"):
        return None
    path = Path(text[3:]).expanduser()
    if path.exists():
        if not is_hf_dir(path):
            raise CultureLLMError(f"hf:{path}: not a Hugging Face model directory (no config.json)")
        return ModelSpec(text, "hf", path=path)
    hub = split_hub_id(text[3:])
    if hub is None:
        raise CultureLLMError(f"hf:{path}: neither a local model directory nor a Hub id ORG/NAME[@REVISION]")
    return ModelSpec(text, "hf", name=hub[0], revision=hub[1])


def _parse_dir(text: str) -> ModelSpec | None:
    """A culture model (culturellm.json, or a directory holding one), a HF model directory, or a
    plain PEFT adapter directory."""
    ref_file = find_modelref(text)
    if ref_file is not None:
        return _parse_modelref(text, ref_file)
    path = Path(text).expanduser()
    if is_hf_dir(path):
        return ModelSpec(text, "dir", path=path)
    if is_adapter_dir(path):
        return ModelSpec(text, "dir", adapter=path, base=parse_spec(_adapter_base(path)))
    if path.exists():
        raise unknown_spec(text, f"{path} is not a model directory")
    return None


def _parse_modelref(text: str, ref_file: Path) -> ModelSpec:
    ref = read_modelref(ref_file)
    if ref.kind == "openai":
        if not ref.model:
            raise DataError(f"{ref_file}: kind 'openai' needs a 'model' field")
        return ModelSpec(text, "openai", name=ref.model, base_url=ref.base_url, source=ref_file)
    path = ref.resolve_path(ref_file)
    if ref.kind == "merged":
        if not is_hf_dir(path):
            raise DataError(f"{ref_file}: merged model directory {path} has no config.json")
        return ModelSpec(text, "dir", path=path, source=ref_file)
    if not is_adapter_dir(path):
        raise DataError(f"{ref_file}: adapter directory {path} has no adapter_config.json")
    return ModelSpec(text, "dir", adapter=path, base=parse_spec(ref.base), source=ref_file)


def is_hf_dir(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


def is_adapter_dir(p: Path) -> bool:
    return p.is_dir() and (p / "adapter_config.json").is_file()


def _adapter_base(adapter: Path) -> str:
    """The base spec of a plain PEFT adapter directory: culturellm.json beside or above it, else the
    adapter config's base_model_name_or_path when that is a local spec or a Hub id."""
    from culturellm.llm.convert import BUNDLED
    from culturellm.llm.hub import split_hub_id

    for d in (adapter, adapter.parent):
        if (d / MODELREF_FILE).is_file():
            return read_modelref(d / MODELREF_FILE).base
    from culturellm.jsonio import read_json

    cfg = read_json(adapter / "adapter_config.json", what="adapter config")
    base = str(cfg.get("base_model_name_or_path") or "")
    if base in BUNDLED or is_hf_dir(Path(base.removeprefix("hf:"))):
        return base
    if split_hub_id(base.removeprefix("hf:")) is not None:
        return f"hf:{base.removeprefix('hf:')}"
    raise CultureLLMError(
        f"{adapter}: PEFT adapter whose base '{base}' is neither a local model nor a Hub id; add a "
        f"{MODELREF_FILE} naming its base (e.g. 'bundled')"
    )


# --------------------------------------------------------------------------------------------------
# Where the weights are (the `weights` hook of the local kinds; adapters are resolved to their base
# by the registry before the hook is asked)


def _bundled_weights(spec: ModelSpec) -> Path:
    from culturellm.llm.convert import converted_dir

    return converted_dir(spec.name or spec.kind)  # converting the bundled GGUF once


def _hf_weights(spec: ModelSpec) -> Path:
    if spec.path is not None:
        return spec.path
    from culturellm.llm.hub import snapshot

    assert spec.name is not None
    path = snapshot(spec.name, spec.revision)  # the Hugging Face cache, downloaded when online
    if not (path / "config.json").is_file():
        raise CultureLLMError(f"{spec.text}: snapshot {path} has no config.json (not a transformers model)")
    return path


def _resolve_hf(spec: ModelSpec) -> ModelSpec:
    """A Hub repo that holds a PEFT adapter (adapter_config.json, no config.json), such as a published
    culture model, becomes an adapter spec: the snapshot is the adapter, its base comes from its
    culturellm.json, else from adapter_config.json's base_model_name_or_path (a Hub id)."""
    if spec.path is not None or spec.name is None:
        return spec
    import dataclasses

    from culturellm.llm.hub import snapshot

    path = snapshot(spec.name, spec.revision)
    if (path / "config.json").is_file() or not is_adapter_dir(path):
        return spec
    ref = path / MODELREF_FILE
    base = parse_spec(_adapter_base(path))
    return dataclasses.replace(spec, adapter=path, base=base, source=ref if ref.is_file() else None)


def _dir_weights(spec: ModelSpec) -> Path:
    assert spec.path is not None
    return spec.path


# --------------------------------------------------------------------------------------------------
# Loaders

# options of local models that a remote one has no use for (one command line serves both kinds)
LOCAL_ONLY = ("device", "dtype", "device_map", "batch_size", "score_rows", "score_tokens", "progress")


def _load_local(spec: ModelSpec) -> Any:
    from culturellm.llm.local_pool import load_local_chat

    return load_local_chat(spec)


def _load_openai(spec: ModelSpec) -> Any:
    from culturellm.llm.openai_backend import OpenAIChatModel

    assert spec.name is not None
    options = {k: v for k, v in spec.options.items() if k not in LOCAL_ONLY}
    return OpenAIChatModel(spec.name, base_url=spec.base_url, name=spec.text, **options)


def _load_fake(spec: ModelSpec) -> Any:
    from culturellm.llm.fake import FakeBackend

    return FakeBackend(spec.text, **spec.options)
