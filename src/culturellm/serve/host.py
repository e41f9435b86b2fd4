"""The served models: one base model in memory, PEFT adapters on it by name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from culturellm.errors import CultureLLMError
from culturellm.llm.adapter_files import check_adapter_dir
from culturellm.llm.loading import load_local
from culturellm.llm.local import LocalChatModel
from culturellm.llm.local_pool import load_local_chat
from culturellm.llm.registry import parse_spec, resolve_spec, weights_dir


class ModelHost:
    """A LocalChatModel and the model names it answers to: name -> PEFT adapter name, or None for
    the model itself (adapters disabled when it has any)."""

    def __init__(self, chat: LocalChatModel, routes: dict[str, str | None], base: str | None = None) -> None:
        self.chat = chat
        self.base = base or chat.name  # what is in memory: the base model's spec or directory
        self.routes = dict(routes)
        self.peft = any(a is not None for a in routes.values())

    @property
    def names(self) -> list[str]:
        return list(self.routes)

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[LocalChatModel]:
        """The chat model with `name`'s adapter active (call from the worker thread only)."""
        adapter = self.routes[name]
        if not self.peft:
            yield self.chat
        elif adapter is None:
            with self.chat.model.disable_adapter():
                yield self.chat
        else:
            self.chat.model.set_adapter(adapter)
            yield self.chat


def load_host(
    models: Sequence[tuple[str, str]], *, dtype: str | None = None, device: str | None = None
) -> ModelHost:
    """Load `(name, spec)` pairs: one spec as it is (adapter merged); several must be PEFT adapters of
    one base model (or that base itself), loaded once with every adapter by name."""
    options = {k: v for k, v in (("dtype", dtype), ("device", device)) if v}
    parts = [(name, resolve_spec(parse_spec(spec))) for name, spec in models]  # hf: adapters too
    for _, p in parts:
        if p.adapter is not None:
            check_adapter_dir(p.adapter)  # before the base loads
    if len(parts) == 1:
        name, spec = parts[0]
        return ModelHost(load_local_chat(spec, **options), {name: None})
    bases = {str(weights_dir(p).resolve()): p for _, p in parts}
    if len(bases) > 1:
        listed = "; ".join(f"{p.text} -> {d}" for d, p in ((weights_dir(p), p) for _, p in parts))
        raise CultureLLMError(f"serving several models needs adapters of one base model, got: {listed}")
    base_dir, first = next(iter(bases.items()))
    base_spec = first.base if first.adapter is not None and first.base is not None else first
    model, tokenizer = load_local(base_spec, **options)
    routes: dict[str, str | None] = {}
    for i, (name, p) in enumerate(parts):
        if p.adapter is None:
            routes[name] = None
            continue
        key = f"adapter{i}"
        if not hasattr(model, "peft_config"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(p.adapter), adapter_name=key)
        else:
            model.load_adapter(str(p.adapter), adapter_name=key)
        routes[name] = key
    model.eval()
    return ModelHost(LocalChatModel(model, tokenizer, name=base_spec.text), routes, base=base_dir)
