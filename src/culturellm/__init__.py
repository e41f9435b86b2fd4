"""culturellm: make LLMs culturally aware at low cost (CultureLLM, Li et al., NeurIPS 2024)."""

import logging as _logging

__version__ = "0.1.0"

# bitsandbytes (the [qlora] extra), imported by peft/transformers whenever it is installed, warns on
# stderr at import on CPUs with AVX512-BF16 that an optional Hub kernel package is missing: noise in
# every command's output (and it would break the "one error line" contract). Its CPU kernels work.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
