"""Fine-tuning: LoRA culture models locally (TRL + PEFT) or through the OpenAI fine-tuning API.

`finetune(data, base, out, config)` trains and returns the path of the model reference
(DIR/culturellm.json) that `chat`, `serve` and `evaluate` accept as a model spec.
"""

from culturellm.finetune.api import finetune
from culturellm.finetune.config import PRESETS, FinetuneConfig

__all__ = ["PRESETS", "FinetuneConfig", "finetune"]
