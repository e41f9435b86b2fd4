"""Moved to `culturellm.llm.modelref` (beside the model spec that reads it); kept importable."""

from culturellm.llm.modelref import MODELREF_FILE, ModelRef, find_modelref, read_modelref, write_modelref

__all__ = ["MODELREF_FILE", "ModelRef", "find_modelref", "read_modelref", "write_modelref"]
