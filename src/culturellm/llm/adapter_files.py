"""A PEFT adapter directory checked before anything is loaded: one clear error naming the file, what is
wrong with it and how to fix it, instead of whatever peft or safetensors raise deep inside a load
(a truncated weights file, a missing one, a torn `adapter_config.json`, an unknown `peft_type`)."""

from __future__ import annotations

from pathlib import Path

from culturellm.errors import DataError

CONFIG_FILE = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
FIX = "copy the adapter directory again, or fine-tune it again with `culturellm finetune`"


def check_adapter_dir(path: str | Path) -> None:
    """DataError when the adapter directory `path` cannot be loaded: its config is not a JSON object of
    a PEFT type this peft knows, or its weights file is missing, empty, truncated or not safetensors."""
    path = Path(path)
    _check_config(path / CONFIG_FILE)
    weights = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
    if weights is None:
        raise DataError(f"{path}: PEFT adapter without its weights ({WEIGHT_FILES[0]} is missing); {FIX}")
    if weights.stat().st_size == 0:
        raise DataError(f"{weights}: the adapter weights file is empty; {FIX}")
    if weights.suffix == ".safetensors":
        _check_safetensors(weights)


def _check_config(config: Path) -> None:
    from culturellm.jsonio import read_json

    try:
        cfg = read_json(config, what="adapter config")
    except DataError as e:
        raise DataError(f"{e}; {FIX}") from None
    peft_type = cfg.get("peft_type")
    from peft.utils import PeftType

    known = [t.value for t in PeftType]
    if peft_type not in known:
        shown = ", ".join(known[:6])
        raise DataError(
            f"{config}: field 'peft_type': unknown PEFT type {peft_type!r} (this peft knows {shown}, ...); "
            f"{FIX}"
        )


def _check_safetensors(weights: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="numpy") as f:
            keys = list(f.keys())
    except (SafetensorError, OSError) as e:
        why = str(e).removeprefix("Error while deserializing header: ")
        raise DataError(
            f"{weights}: damaged adapter weights, not a complete safetensors file ({why}); {FIX}"
        ) from None
    if not keys:
        raise DataError(f"{weights}: the adapter weights file holds no tensors; {FIX}")
