"""culturellm: make LLMs culturally aware at low cost (CultureLLM, Li et al., NeurIPS 2024)."""

__version__ = "0.1.0"
