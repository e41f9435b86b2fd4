"""Local chat models (transformers + torch): batched generation and exact, batched scoring.

`load_local(spec)` resolves a model spec to raw HF objects (used by fine-tuning too);
`LocalChatModel(model, tokenizer, name=...)` wraps any in-memory causal LM (tiny random ones in tests).

Scoring is exact: each candidate is scored as the assistant turn that follows the chat template's
generation prompt, token by token, from one forward pass of the prompt (KV cache reused for all of its
candidates) plus one small batched pass over the candidate tokens. The token prefix every prompt of a
call shares (chat template, system prompt, task instruction) is computed once, and prompts are batched
by length so that padding stays small: on CPU both halve the cost of a classification evaluation.
With `end_of_turn=True` the template's end-of-turn token (`<|im_end|>` for SmolLM2) is appended to
every candidate, so "1" cannot beat "10" by being its prefix; with `end_of_turn=False` and
single-token candidates the prompt pass alone suffices.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.llm.backend import Backend
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.records import Completion, Scored
from culturellm.llm.spec import ModelSpec, parse_spec

# A plain ChatML template for tokenizers that have none (tiny test tokenizers, base models).
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Gemma 3's chat template (the GGUF in the gemma3-270m packages carries none): system text is
# prepended to the first user turn; the assistant role is called "model".
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


def ensure_chat_template(tokenizer: Any) -> None:
    """Give a tokenizer without a chat template the one its vocabulary implies (Gemma's turn
    markers, else ChatML), and a pad token (EOS) when it has none; both are needed for batching."""
    if tokenizer.chat_template is None:
        vocab = tokenizer.get_vocab()
        tokenizer.chat_template = GEMMA_TEMPLATE if "<start_of_turn>" in vocab else CHATML_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


# --------------------------------------------------------------------------------------------------
# Resolving specs to HF objects

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_device(device: str | None = None) -> str:
    """The torch device a `device` option names: auto (or None) is CUDA when there is one, else MPS,
    else the CPU; an explicit accelerator that is not present is an error."""
    import torch

    name = (device or "auto").strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise CultureLLMError(f"unknown device '{device}': use one of {', '.join(DEVICES)}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise CultureLLMError(f"device '{name}': no CUDA device is available to torch {torch.__version__}")
    if kind == "mps" and not has_mps:
        raise CultureLLMError(f"device '{name}': the MPS backend is not available")
    return name


def resolve_dtype(dtype: str | None, device: str = "cpu") -> Any:
    """The torch dtype a `dtype` option names; auto (or None): bfloat16 on a CUDA device that supports
    it (float16 on one that does not), float16 on MPS, float32 on the CPU."""
    import torch

    name = _DTYPE_ALIASES.get(str(dtype or "auto").lower(), str(dtype or "auto").lower())
    if name not in DTYPES:
        raise CultureLLMError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.startswith("mps") else torch.float32
    return getattr(torch, name)


def resolve_local_dir(spec: ModelSpec | str) -> Path:
    """The directory of weights a local spec loads from (an adapter's: its base's; converting bundled
    GGUFs once; a Hub id's snapshot in the Hugging Face cache, downloaded when online)."""
    from culturellm.llm.convert import BUNDLED, converted_dir

    spec = parse_spec(spec)
    if spec.adapter is not None and spec.base is not None:
        return resolve_local_dir(spec.base)
    if spec.path is not None:
        return spec.path
    if spec.kind in BUNDLED and spec.name:
        return converted_dir(spec.name)
    if spec.kind == "hf" and spec.name:
        from culturellm.llm.hub import snapshot

        return snapshot(spec.name, spec.revision)
    where = f"{spec.source}: a remote model" if spec.source else f"'{spec.text}' is a remote model"
    raise CultureLLMError(f"{where}: it has no local weights")


def load_local(spec: ModelSpec | str, *, merge: bool = False, **options: Any) -> tuple[Any, Any]:
    """Load raw HF objects `(model, tokenizer)` for a local model spec.

    Adapters are loaded on top of their base as a `peft.PeftModel` (merged into the base weights when
    `merge=True`). Options (here or in the spec's options): `device` (auto|cpu|cuda|mps, default auto:
    the accelerator when there is one), `dtype` (auto|float32|bfloat16|float16, default auto: bf16 on
    an accelerator that supports it, fp32 on the CPU), `device_map` (e.g. "auto": accelerate places the
    layers over the devices there are; `device` is then not used), `quantization_config` (a
    transformers BitsAndBytesConfig: the weights are loaded quantised, placed by `device_map`).
    Only a Hub id (`hf:ORG/NAME`) that is not in the Hugging Face cache is downloaded, and only when
    online (HF_HUB_OFFLINE unset).
    """
    spec = parse_spec(spec, **options)
    directory = resolve_local_dir(spec)  # raises for remote models
    device = resolve_device(spec.options.get("device"))
    dtype = resolve_dtype(spec.options.get("dtype"), device)
    device_map = spec.options.get("device_map")
    extra = {
        k: spec.options[k] for k in ("device_map", "quantization_config") if spec.options.get(k) is not None
    }
    model, tokenizer = _from_pretrained(directory, dtype=dtype, **extra)
    if spec.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(spec.adapter))
        if merge:
            model = model.merge_and_unload()
    if device_map is None and device != "cpu":
        model = model.to(device)
    model.eval()
    return model, tokenizer


def _from_pretrained(directory: Path, **kw: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a 3 s load; restored below
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, **kw)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CultureLLMError(f"{directory}: cannot load model: {e}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    ensure_chat_template(tokenizer)
    return model, tokenizer


# --------------------------------------------------------------------------------------------------
# The chat model


def _end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids the chat template puts after an assistant message (e.g. `<|im_end|>`), else EOS."""
    marker = "\x00ZQX\x00"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
        )
        tail = text.split(marker, 1)[1].strip()
    except Exception:  # templates that reject this conversation
        tail = ""
    if tail:
        ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
        # keep the special token(s) only: the template's trailing newline is not part of the turn
        special = [i for i in ids if i in set(tokenizer.all_special_ids)]
        if special:
            return special[:1]
        if ids:
            return ids
    if tokenizer.eos_token_id is None:
        raise CultureLLMError("tokenizer has neither an end-of-turn token in its chat template nor an EOS")
    return [int(tokenizer.eos_token_id)]


class LocalChatModel(Backend):
    """A `ChatModel` over an in-memory HF causal LM and tokenizer.

    batch_size: prompts per forward pass for generation and scoring (prompts are sorted by length so a
    batch pads little). score_rows / score_tokens: candidate rows (and their tokens) per pass in
    scoring. score_max_pad: a scoring batch is closed before its longest prompt exceeds this multiple of
    its shortest (padding is pure waste in a prompt pass; None: batches of batch_size). score_min_prefix:
    a token prefix shared by all prompts of a `score` call (template, system prompt, instruction) at
    least this long is computed once and its KV cache reused (0: off).
    """

    backend = "local"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "local",
        *,
        batch_size: int = 16,
        score_rows: int = 64,
        score_tokens: int = 8192,
        score_max_pad: float | None = 1.25,
        score_min_prefix: int = 16,
        progress: bool = False,
    ) -> None:
        super().__init__(name)
        self.model = model
        self.tokenizer = tokenizer
        self.load_seconds = 0.0
        self.device_name = str(self.device)  # what was used, for reports (load_local_chat: as resolved)
        self.dtype_name = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.batch_size = batch_size
        self.score_rows = score_rows
        self.score_tokens = score_tokens
        self.score_max_pad = score_max_pad
        self.score_min_prefix = score_min_prefix
        self.sliding_window = _sliding_window(model)
        self.progress = progress
        self._lock = threading.Lock()  # one forward pass at a time (torch uses all cores anyway)
        ensure_chat_template(tokenizer)
        self.pad_id = int(tokenizer.pad_token_id)
        self.eot_ids = _end_of_turn_ids(tokenizer)
        stop = {self.eot_ids[0]} if len(self.eot_ids) == 1 else set()
        if tokenizer.eos_token_id is not None:
            stop.add(int(tokenizer.eos_token_id))
        self.stop_ids = sorted(stop)
        model.eval()

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def prompt_ids(self, messages: Chat) -> list[int]:
        """Token ids of the chat prompt up to and including the generation prompt."""
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
                mask[r, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        return ids.to(dev), mask.to(dev), pos.to(dev)

    def _batches(self, lengths: Sequence[int], size: int, max_pad: float | None = None) -> list[list[int]]:
        """Indices grouped into batches of at most `size`, shortest prompts first. With `max_pad`, a
        batch is also closed before its longest prompt would exceed `max_pad` times its shortest, so
        padding wastes at most 1 - 1/max_pad of a batch's compute."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches: list[list[int]] = []
        for i in order:
            cur = batches[-1] if batches else None
            if (
                cur is None
                or len(cur) >= size
                or (max_pad is not None and lengths[i] > max_pad * max(lengths[cur[0]], 1))
            ):
                batches.append([i])
            else:
                cur.append(i)
        return batches

    def _progress(self, total: int, what: str) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(
            TextColumn(what),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not self.progress or total <= self.batch_size,
            transient=True,
        )
        return prog

    # -- generate ----------------------------------------------------------------------------------

    def generate_detailed(
        self, requests: Sequence[Chat], params: SamplingParams | None = None
    ) -> list[Completion]:
        """One assistant reply per chat request, with token counts and latency. Greedy when
        temperature == 0; otherwise sampling seeded from (params.seed, params.sample_index): the same
        call with the same batch replays."""
        if not requests:
            return []
        done = self.generate_ids([self.prompt_ids(r) for r in requests], params)
        return [dataclasses.replace(c, text=c.text.strip()) for c in done]

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | None = None,
        *,
        logprobs: int | None = None,
        stop_checks: Sequence[Any] | None = None,
    ) -> list[Completion]:
        """Generate from token-id prompts (chat-formatted or raw). `logprobs=k` also returns, per
        generated token, its log-probability under the model and the k most likely alternatives
        (as the OpenAI API does; computed from the unmodified distribution). `stop_checks`: one
        callable per prompt, asked after every decoding step; a row whose callable returns True stops
        there (a cancelled request or a time limit; `culturellm serve` uses it)."""
        import torch

        params = params or SamplingParams()
        out: list[Completion] = [Completion("")] * len(prompts)
        sampling = params.temperature > 0
        gen_kw: dict[str, Any] = {
            "max_new_tokens": max(1, int(params.max_tokens)),
            "do_sample": sampling,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.stop_ids,
        }
        if sampling:
            gen_kw.update(temperature=float(params.temperature), top_p=float(params.top_p), top_k=0)
        else:  # override generation_config sampling defaults, so greedy stays greedy and quiet
            gen_kw.update(temperature=None, top_p=None, top_k=None)
        if logprobs is not None:
            gen_kw.update(return_dict_in_generate=True, output_logits=True)
        batches = self._batches([len(p) for p in prompts], self.batch_size)
        rng_devices = [self.device] if self.device.type == "cuda" else []  # seeding touches CUDA's RNG too
        with self._lock, torch.inference_mode(), self._progress(len(prompts), "generating") as prog:
            task = prog.add_task("gen", total=len(prompts))
            for b, idx in enumerate(batches):
                ids, mask, _ = self._left_pad([prompts[i] for i in idx])
                t0 = time.perf_counter()
                with torch.random.fork_rng(devices=rng_devices):  # the caller's RNG state is left alone
                    if sampling:  # reproducible: same seed, sample index and batch -> same samples
                        torch.manual_seed(
                            (int(params.seed) * 1_000_003 + int(params.sample_index)) * 7919 + b
                        )
                    extra: dict[str, Any] = {}
                    if stop_checks is not None:
                        extra["stopping_criteria"] = _row_stops([stop_checks[i] for i in idx])
                    result = self.model.generate(input_ids=ids, attention_mask=mask, **gen_kw, **extra)
                latency = (time.perf_counter() - t0) / len(idx)
                seqs = result.sequences if logprobs is not None else result
                new = seqs[:, ids.shape[1] :]
                step_lp = None
                if logprobs is not None:
                    step_lp = torch.stack([lg.float() for lg in result.logits], dim=1).log_softmax(-1)
                for row, i in enumerate(idx):
                    toks = new[row].tolist()
                    n, finish = len(toks), "length"
                    for k, t in enumerate(toks):
                        if t in self.stop_ids:
                            n, finish = k, "stop"
                            break
                    text = self.tokenizer.decode(toks[:n], skip_special_tokens=True)
                    cut = _apply_stop(text, params.stop)
                    if len(cut) < len(text):
                        finish = "stop"
                    token_lps = None
                    if step_lp is not None:
                        token_lps = self._token_logprobs(step_lp[row, :n], toks[:n], logprobs or 0)
                    out[i] = Completion(
                        cut,
                        prompt_tokens=len(prompts[i]),
                        completion_tokens=min(len(toks), n + 1),
                        latency_s=latency,
                        finish_reason=finish,
                        token_logprobs=token_lps,
                    )
                prog.advance(task, len(idx))
        return out

    def _token_logprobs(self, lp: Any, toks: Sequence[int], k: int) -> list[dict[str, Any]]:
        entries = []
        for step, t in enumerate(toks):
            top = []
            if k > 0:
                vals, idx = lp[step].topk(k)
                top = [
                    {"token": self.tokenizer.decode([int(j)]), "logprob": float(v)}
                    for v, j in zip(vals.tolist(), idx.tolist(), strict=True)
                ]
            entries.append(
                {
                    "id": int(t),
                    "token": self.tokenizer.decode([t]),
                    "logprob": float(lp[step, t]),
                    "top_logprobs": top,
                }
            )
        return entries

    # -- score -------------------------------------------------------------------------------------

    def candidate_ids(self, candidate: str, end_of_turn: bool) -> list[int]:
        ids = self.tokenizer(candidate, add_special_tokens=False)["input_ids"]
        ids = [int(i) for i in ids]
        if end_of_turn:
            ids += self.eot_ids
        if not ids:
            raise CultureLLMError("cannot score an empty candidate with end_of_turn=False")
        return ids

    def score_detailed(self, requests: Sequence[ScoreRequest], *, mode: str = "kv") -> list[Scored]:
        """Exact log-probabilities of each candidate as the assistant reply.

        mode "kv" (default): the prefix all prompts share once, one batched pass over the rest of the
        prompts on top of its KV cache (batches of similar length, so little padding), then the
        candidate tokens of every (prompt, candidate) row on top of the reused KV cache. mode "full":
        every prompt+candidate sequence in full (slower; used to cross-check)."""
        import torch

        if not requests:
            return []
        for r in requests:
            if not r.candidates:
                raise CultureLLMError("score request with no candidates")
        prompts = [self.prompt_ids(r.messages) for r in requests]
        cands = [[self.candidate_ids(c, r.end_of_turn) for c in r.candidates] for r in requests]
        sums: list[list[float]] = [[0.0] * len(c) for c in cands]
        t0 = time.perf_counter()
        with self._lock, torch.inference_mode(), self._progress(len(prompts), "scoring") as prog:
            task = prog.add_task("score", total=len(prompts))
            prefix = self._prefix_cache(prompts) if mode == "kv" else (0, None)
            lengths = [len(p) - prefix[0] for p in prompts]
            for idx in self._batches(lengths, self.batch_size, self.score_max_pad):
                if mode == "kv":
                    self._score_kv(idx, prompts, cands, sums, prefix)
                elif mode == "full":
                    self._score_full(idx, prompts, cands, sums)
                else:
                    raise ValueError(f"unknown score mode {mode!r}")
                prog.advance(task, len(idx))
        latency = (time.perf_counter() - t0) / len(requests)
        return [
            Scored(
                ScoreResult(logprobs=tuple(s), num_tokens=tuple(len(c) for c in cs)),
                prompt_tokens=len(p) + sum(len(c) for c in cs),
                latency_s=latency,
            )
            for s, p, cs in zip(sums, prompts, cands, strict=True)
        ]

    def _rows_per_pass(self, width: int) -> int:
        """Candidate rows per forward pass: `score_rows`, fewer for long prompts (memory bound)."""
        return max(1, min(self.score_rows, self.score_tokens // max(width, 1)))

    def _prefix_cache(self, prompts: list[list[int]]) -> tuple[int, Any]:
        """The longest token prefix all `prompts` share (chat template, system prompt, instruction)
        and its KV cache, computed once per `score` call and reused by every batch; (0, None) when
        the prompts share fewer than `score_min_prefix` tokens."""
        if len(prompts) < 2 or not self.score_min_prefix:
            return 0, None
        if self.sliding_window is not None and min(len(p) for p in prompts) > self.sliding_window:
            return 0, None  # every batch would run whole prompts (see _score_kv)
        first, n = prompts[0], min(len(p) for p in prompts) - 1  # keep >= 1 token per suffix
        k = 0
        while k < n and all(p[k] == first[k] for p in prompts):
            k += 1
        if k < self.score_min_prefix:
            return 0, None
        import torch

        ids = torch.tensor([first[:k]], dtype=torch.long, device=self.device)
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        return k, _cache_of(out)

    def _score_kv(
        self,
        idx: list[int],
        prompts: list[list[int]],
        cands: list[list[list[int]]],
        sums: list[list[float]],
        prefix: tuple[int, Any] = (0, None),
    ) -> None:
        import torch

        plen, pcache = prefix
        width = max(len(prompts[i]) - plen for i in idx)
        if plen and self.sliding_window is not None and plen + width > self.sliding_window:
            # pads between prefix and suffix would count as distance in a sliding-window layer and push
            # the prefix out of the window: this batch runs whole prompts, left-padded
            plen, pcache = 0, None
        ids, mask, pos = self._left_pad([prompts[i][plen:] for i in idx])
        multi = any(len(c) > 1 for i in idx for c in cands[i])
        kw: dict[str, Any] = {}
        if plen:  # the suffixes continue the shared prefix: [prefix][left pads][suffix]
            rows0 = torch.zeros(len(idx), dtype=torch.long, device=ids.device)
            kw[_cache_kwarg()] = _select_cache(pcache, rows0)
            kw["cache_position"] = torch.arange(plen, plen + ids.shape[1], device=ids.device)
            mask = torch.cat([torch.ones((len(idx), plen), dtype=mask.dtype, device=mask.device), mask], 1)
            pos = pos + plen
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=multi, logits_to_keep=1, **kw
        )
        first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # (B, V)
        rows = [(b, i, j) for b, i in enumerate(idx) for j in range(len(cands[i]))]
        for b, i, j in rows:
            sums[i][j] = float(first[b, cands[i][j][0]])
        if not multi:
            return
        cache = _cache_of(out)
        width = mask.shape[1]
        step = self._rows_per_pass(width)  # each row holds a copy of its prompt's KV cache
        rows = [r for r in rows if len(cands[r[1]][r[2]]) > 1]
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            if not chunk:
                continue
            # candidate tokens after the first, right-padded; they attend to their own prompt's cache
            tails = [cands[i][j][:-1] for _, i, j in chunk]  # inputs predicting tokens 1..n-1
            c_width = max(len(t) for t in tails)
            c_ids = torch.full((len(chunk), c_width), self.pad_id, dtype=torch.long)
            c_mask = torch.zeros((len(chunk), c_width), dtype=torch.long)
            for r, t in enumerate(tails):
                c_ids[r, : len(t)] = torch.tensor(t)
                c_mask[r, : len(t)] = 1
            sel = torch.tensor([b for b, _, _ in chunk], dtype=torch.long, device=ids.device)
            sub = _select_cache(cache, sel)
            full_mask = torch.cat([mask.index_select(0, sel), c_mask.to(ids.device)], dim=1)
            start_pos = mask.index_select(0, sel).sum(-1, keepdim=True)
            c_pos = start_pos + torch.arange(c_width, device=ids.device)[None, :]
            cache_pos = torch.arange(width, width + c_width, device=ids.device)
            o = self.model(
                input_ids=c_ids.to(ids.device),
                attention_mask=full_mask,
                position_ids=c_pos,
                cache_position=cache_pos,
                use_cache=True,
                **{_cache_kwarg(): sub},
            )
            lp = torch.log_softmax(o.logits.float(), dim=-1)
            for r, (_, i, j) in enumerate(chunk):
                target = cands[i][j][1:]
                t = torch.tensor(target, device=lp.device)
                sums[i][j] += float(lp[r, torch.arange(len(target), device=lp.device), t].sum())

    def _score_full(
        self,
        idx: list[int],
        prompts: list[list[int]],
        cands: list[list[list[int]]],
        sums: list[list[float]],
    ) -> None:
        import torch

        rows = [(i, j) for i in idx for j in range(len(cands[i]))]
        width = max(len(prompts[i]) for i in idx)
        step = self._rows_per_pass(width)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            seqs = [prompts[i] + cands[i][j] for i, j in chunk]
            ids, mask, pos = self._left_pad(seqs)
            keep = max(len(cands[i][j]) for i, j in chunk) + 1
            o = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)
            lp = torch.log_softmax(o.logits.float(), dim=-1)  # (R, keep, V): positions width-keep..width-1
            for r, (i, j) in enumerate(chunk):
                c = cands[i][j]
                n = len(c)
                # logits at kept position k predict token at absolute width-keep+k+1
                k0 = keep - 1 - n
                t = torch.tensor(c, device=lp.device)
                sums[i][j] = float(lp[r, torch.arange(k0, k0 + n, device=lp.device), t].sum())


def _row_stops(checks: Sequence[Any]) -> Any:
    """A StoppingCriteriaList that stops each row when its callable returns True."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class RowStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.tensor([bool(c()) for c in checks], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([RowStop()])


def _sliding_window(model: Any) -> int | None:
    """The attention window of a model with sliding-window layers (Gemma 3, Mistral...), else None."""
    cfg = getattr(model, "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    window = getattr(cfg, "sliding_window", None)
    return int(window) if isinstance(window, int) and window > 0 else None


@functools.cache
def _cache_kwarg() -> str:
    """The forward() keyword of the KV cache: `cache` since transformers 5.24, `past_key_values` before
    (still accepted, with a deprecation warning)."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    return out.cache if "cache" in out else out.past_key_values


def _select_cache(cache: Any, index: Any) -> Any:
    """A new cache holding rows `index` of `cache` (the original is left intact)."""
    sub = copy.copy(cache)
    sub.layers = [copy.copy(layer) for layer in cache.layers]
    sub.reorder_cache(index)
    return sub


def _apply_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        if s:
            k = text.find(s)
            if 0 <= k < cut:
                cut = k
    return text[:cut]


# --------------------------------------------------------------------------------------------------
# Memoised loading


def local_fingerprint(spec: ModelSpec | str) -> str:
    """A short hash of the weight files a local spec loads (names, sizes, mtimes), so the response
    cache never answers for a re-trained adapter or model from entries of its previous version."""
    import hashlib

    spec = parse_spec(spec)
    if spec.adapter is not None and spec.base is not None:
        return f"{local_fingerprint(spec.base)}+{_hash_dirs([spec.adapter])}"
    return hashlib.sha256(_hash_dirs([resolve_local_dir(spec)]).encode()).hexdigest()[:12]


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


def load_local_chat(spec: ModelSpec | str, **options: Any) -> LocalChatModel:
    """A `LocalChatModel` for a local spec, loaded once per process (memoised on the spec and the
    device, dtype and device map it resolves to); adapters are merged into their base for inference.
    Options: `device`, `dtype`, `device_map` (see `load_local`), and LocalChatModel's (`batch_size`...).
    """
    spec = parse_spec(spec, **options)
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
