"""The model card (DIR/README.md) of a fine-tuned culture model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturellm.jsonio import atomic_write_text


def model_card(summary: dict[str, Any], kind: str = "peft-adapter") -> str:
    """Markdown with a Hugging Face YAML header: base, cultures, data hash, sizes, config, final loss."""
    cultures = summary.get("cultures") or []
    cfg = summary.get("config", {})
    title = "CultureLLM-One" if len(cultures) > 1 else f"CultureLLM ({', '.join(cultures) or 'unnamed'})"
    tags = ["culturellm", "lora", "peft", "trl", "sft", *[f"culture:{c}" for c in cultures]]
    base_model = summary.get("base_model") or summary.get("base_path") or summary.get("base")  # a Hub id
    lines = [
        "---",
        "library_name: peft" if kind == "peft-adapter" else "library_name: transformers",
        f"base_model: {json.dumps(base_model)}",
        "tags:",
        *[f"- {json.dumps(t)}" for t in tags],
        "---",
        "",
        f"# {title}",
        "",
        f"A LoRA fine-tune of `{summary.get('base')}` made with culturellm "
        "(CultureLLM, Li et al., NeurIPS 2024): trained to answer World Values Survey questions "
        "as a typical person of the culture named in the system prompt would.",
        "",
        "| | |",
        "|---|---|",
        f"| base model (spec) | `{summary.get('base')}` |",
        f"| cultures | {', '.join(cultures) or '-'} |",
        f"| training data | {', '.join(f'`{f}`' for f in summary.get('data_files', []))} |",
        f"| data sha256 | `{summary.get('data_sha256')}` |",
        f"| examples | {summary.get('examples')} ({summary.get('tokens_per_epoch')} tokens per epoch) |",
        f"| steps / epochs | {summary.get('steps')} / {summary.get('epochs')} |",
        f"| trainable / total parameters | {summary.get('trainable_params')} / "
        f"{summary.get('total_params')} |",
        f"| first / final logged loss (answer tokens) | {_f(summary.get('first_loss'))} / "
        f"{_f(summary.get('final_loss'))} |",
        f"| base weights while training | {summary.get('quantization', 'none')} |",
        f"| precision / device / processes | {summary.get('precision')} / {summary.get('device')} / "
        f"{summary.get('world_size')} |",
        f"| training time | {summary.get('runtime_s')} s |",
        "",
        "## Use",
        "",
        "```bash",
        'culturellm chat --model DIR "..."          # DIR = this directory (culturellm.json)',
        "```",
        "",
        "```python",
        "from peft import PeftModel",
        "model = PeftModel.from_pretrained(base_model, DIR)  # base_model: the base above",
        "```",
        "",
        "## Training configuration",
        "",
        "```json",
        json.dumps(cfg, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def write_model_card(out: Path, summary: dict[str, Any], kind: str = "peft-adapter") -> Path:
    path = Path(out) / "README.md"
    atomic_write_text(path, model_card(summary, kind))
    return path
