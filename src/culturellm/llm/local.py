"""The local chat model (transformers + torch): batched generation and exact, batched scoring.

`LocalChatModel(model, tokenizer, name=...)` wraps any in-memory causal LM (tiny random ones in tests);
`culturellm.llm.local_pool.load_local_chat(spec)` loads one for a spec, once per process.

Scoring is exact: each candidate is scored as the assistant turn that follows the chat template's
generation prompt, token by token, from one forward pass of the prompt (KV cache reused for all of its
candidates) plus one small batched pass over the candidate tokens. The token prefix every prompt of a
call shares (chat template, system prompt, task instruction) is computed once, and prompts are batched
by length so that padding stays small: on CPU both halve the cost of a classification evaluation.
With `end_of_turn=True` the template's end-of-turn token (`<|im_end|>` for SmolLM2) is appended to
every candidate, so "1" cannot beat "10" by being its prefix; with `end_of_turn=False` and
single-token candidates the prompt pass alone suffices.

`prompt_logprobs` gives the log-probability of every token of token-id sequences (what an OpenAI
`echo` request asks for; `culturellm serve` uses it).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.llm.backend import Backend
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.hf_compat import (
    TemperatureTopP,
    cache_kwarg,
    cache_of,
    end_of_turn_ids,
    ensure_chat_template,
    row_stops,
    select_cache,
    sliding_window,
)
from culturellm.llm.records import Completion, Scored


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
        self.sliding_window = sliding_window(model)
        self.progress = progress
        self._lock = threading.Lock()  # one forward pass at a time (torch uses all cores anyway)
        ensure_chat_template(tokenizer)
        self.pad_id = int(tokenizer.pad_token_id)
        self.eot_ids = end_of_turn_ids(tokenizer)
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
        gen_kw = _generate_kwargs(params, self.pad_id, self.stop_ids, logprobs=logprobs is not None)
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
                        extra["stopping_criteria"] = row_stops([stop_checks[i] for i in idx])
                    result = self.model.generate(input_ids=ids, attention_mask=mask, **gen_kw, **extra)
                latency = (time.perf_counter() - t0) / len(idx)
                seqs = result.sequences if logprobs is not None else result
                new = seqs[:, ids.shape[1] :]
                step_lp = None
                if logprobs is not None:
                    step_lp = torch.stack([lg.float() for lg in result.logits], dim=1).log_softmax(-1)
                for row, i in enumerate(idx):
                    row_lp = step_lp[row] if step_lp is not None else None
                    toks, n_prompt = new[row].tolist(), len(prompts[i])
                    out[i] = self._completion(toks, params, row_lp, logprobs or 0, n_prompt, latency)
                prog.advance(task, len(idx))
        return out

    def _completion(
        self, toks: list[int], params: SamplingParams, lp: Any, k: int, n_prompt: int, latency: float
    ) -> Completion:
        """The reply in generated tokens `toks`: cut at the first stop token or stop string, with the
        per-token log-probabilities (and top `k`) from `lp` (steps x vocabulary) when given."""
        n, finish = len(toks), "length"
        for pos, t in enumerate(toks):
            if t in self.stop_ids:
                n, finish = pos, "stop"
                break
        text = self.tokenizer.decode(toks[:n], skip_special_tokens=True)
        cut = _apply_stop(text, params.stop)
        if len(cut) < len(text):
            finish = "stop"
        return Completion(
            cut,
            prompt_tokens=n_prompt,
            completion_tokens=min(len(toks), n + 1),
            latency_s=latency,
            finish_reason=finish,
            token_logprobs=self._token_logprobs(lp[:n], toks[:n], k) if lp is not None else None,
        )

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
        return k, cache_of(out)

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
            kw[cache_kwarg()] = select_cache(pcache, rows0)
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
        if multi:
            tails = [r for r in rows if len(cands[r[1]][r[2]]) > 1]
            self._score_tails(tails, cands, sums, cache_of(out), mask)

    def _score_tails(
        self,
        rows: list[tuple[int, int, int]],
        cands: list[list[list[int]]],
        sums: list[list[float]],
        cache: Any,
        mask: Any,
    ) -> None:
        """Adds the log-probabilities of tokens 2..n of each (batch row, prompt, candidate) row, computed
        on top of its prompt's KV cache `cache` (whose attention mask is `mask`)."""
        import torch

        dev, width = mask.device, mask.shape[1]
        step = self._rows_per_pass(width)  # each row holds a copy of its prompt's KV cache
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            # candidate tokens after the first, right-padded; they attend to their own prompt's cache
            tails = [cands[i][j][:-1] for _, i, j in chunk]  # inputs predicting tokens 1..n-1
            c_width = max(len(t) for t in tails)
            c_ids = torch.full((len(chunk), c_width), self.pad_id, dtype=torch.long)
            c_mask = torch.zeros((len(chunk), c_width), dtype=torch.long)
            for r, t in enumerate(tails):
                c_ids[r, : len(t)] = torch.tensor(t)
                c_mask[r, : len(t)] = 1
            sel = torch.tensor([b for b, _, _ in chunk], dtype=torch.long, device=dev)
            full_mask = torch.cat([mask.index_select(0, sel), c_mask.to(dev)], dim=1)
            start_pos = mask.index_select(0, sel).sum(-1, keepdim=True)
            o = self.model(
                input_ids=c_ids.to(dev),
                attention_mask=full_mask,
                position_ids=start_pos + torch.arange(c_width, device=dev)[None, :],
                cache_position=torch.arange(width, width + c_width, device=dev),
                use_cache=True,
                **{cache_kwarg(): select_cache(cache, sel)},
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

    # -- prompt log-probabilities ------------------------------------------------------------------

    def prompt_logprobs(
        self,
        groups: Sequence[Sequence[Sequence[int]]],
        k: int = 0,
        *,
        stop_checks: Sequence[Callable[[], bool]] | None = None,
    ) -> list[list[dict[str, Any]] | None]:
        """Per group (one request's token-id sequences), per sequence: the log-probability of every
        token after the first given the tokens before it (`token_logprobs`), its top-k alternatives
        (`top`: (id, logprob) pairs), and the greedy next token after the whole sequence (`next`,
        `next_top`). The prefix a group's sequences share (a scoring request's prompt) runs once; its KV
        cache is reused for every sequence's remaining tokens. `stop_checks`: one callable per group,
        asked before every forward pass; a group whose callable returns True stops there and gets
        None (a cancelled request or a time limit; `culturellm serve` uses it)."""
        import torch

        checks = list(stop_checks) if stop_checks is not None else [lambda: False] * len(groups)
        with self._lock, torch.inference_mode():
            return [
                self._group_logprobs([list(s) for s in seqs], k, stop)
                for seqs, stop in zip(groups, checks, strict=True)
            ]

    def _group_logprobs(
        self, seqs: list[list[int]], k: int, stop: Callable[[], bool]
    ) -> list[dict[str, Any]] | None:
        import torch

        if stop():
            return None
        first, n = seqs[0], min(len(s) for s in seqs) - 1  # every sequence keeps >= 1 token of its own
        plen = 0
        while plen < n and all(s[plen] == first[plen] for s in seqs):
            plen += 1
        dev, pre_lp, cache = self.device, None, None
        if plen:
            out = self.model(input_ids=torch.tensor([first[:plen]], device=dev), use_cache=True)
            pre_lp = torch.log_softmax(out.logits[0].float(), dim=-1)  # (plen, V): row t predicts t+1
            cache = cache_of(out)
        vocab = int(self.model.get_output_embeddings().weight.shape[0])
        step = max(1, (32 << 20) // (vocab * max(len(s) - plen for s in seqs)))  # logits under ~128 MB
        results: list[dict[str, Any]] = []
        for start in range(0, len(seqs), step):
            if stop():
                return None
            lp = self._suffix_logprobs([s[plen:] for s in seqs[start : start + step]], plen, cache)
            for r, seq in enumerate(seqs[start : start + step]):
                # distributions predicting tokens 1..len-1, then the one after the sequence
                own = lp[r, : len(seq) - plen]
                dists = torch.cat([pre_lp, own]) if pre_lp is not None else own
                vals, top = _rows_of(dists, seq[1:], k)
                nv, ni = dists[-1].max(-1)
                _, next_top = _rows_of(dists[-1:], [int(ni)], k)
                results.append(
                    {
                        "token_logprobs": vals,
                        "top": top,
                        "next": (int(ni), float(nv)),
                        "next_top": next_top[0] if next_top else [],
                    }
                )
        return results

    def _suffix_logprobs(self, part: list[list[int]], plen: int, cache: Any) -> Any:
        """Log-softmax over the vocabulary at every position of `part` (right-padded), continuing a
        shared prefix of `plen` tokens whose KV cache is `cache`: (rows, width, V)."""
        import torch

        dev, width = self.device, max(len(x) for x in part)
        ids = torch.full((len(part), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(part), plen + width), dtype=torch.long)
        mask[:, :plen] = 1
        for r, x in enumerate(part):  # right-padded: pads after a row's tokens cannot affect them
            ids[r, : len(x)] = torch.tensor(x)
            mask[r, plen : plen + len(x)] = 1
        kw: dict[str, Any] = {}
        if plen:
            kw = {
                cache_kwarg(): select_cache(cache, torch.zeros(len(part), dtype=torch.long, device=dev)),
                "cache_position": torch.arange(plen, plen + width, device=dev),
            }
        pos = torch.arange(plen, plen + width, device=dev)[None, :].expand(len(part), -1)
        out = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos, **kw)
        return torch.log_softmax(out.logits.float(), dim=-1)


def _rows_of(lp: Any, targets: list[int], k: int) -> tuple[list[float], list[list[tuple[int, float]]]]:
    """Log-probs of `targets` under the distributions `lp` (one row per target) and their top-k."""
    import torch

    if not targets:
        return [], []
    tgt = torch.tensor(targets, dtype=torch.long, device=lp.device)
    vals = lp[: len(targets)].gather(1, tgt[:, None])[:, 0].tolist()
    top: list[list[tuple[int, float]]] = []
    if k > 0:
        tv, ti = lp[: len(targets)].topk(k, dim=-1)
        top = [list(zip(i, v, strict=True)) for i, v in zip(ti.tolist(), tv.tolist(), strict=True)]
    return vals, top


def _generate_kwargs(params: SamplingParams, pad_id: int, stop_ids: Any, *, logprobs: bool) -> dict[str, Any]:
    """`model.generate` arguments for `params`: greedy at temperature 0, else seeded sampling."""
    kw: dict[str, Any] = {
        "max_new_tokens": max(1, int(params.max_tokens)),
        "do_sample": params.temperature > 0,
        "pad_token_id": pad_id,
        "eos_token_id": stop_ids,
    }
    if params.temperature > 0 and 0 < params.top_p < 1:  # the same warpers, without a full sort per step
        from transformers import LogitsProcessorList

        warp = TemperatureTopP(float(params.temperature), float(params.top_p))
        kw.update(temperature=1.0, top_p=1.0, top_k=0, logits_processor=LogitsProcessorList([warp]))
    elif params.temperature > 0:
        kw.update(temperature=float(params.temperature), top_p=float(params.top_p), top_k=0)
    else:  # override generation_config sampling defaults, so greedy stays greedy and quiet
        kw.update(temperature=None, top_p=None, top_k=None)
    if logprobs:
        kw.update(return_dict_in_generate=True, output_logits=True)
    return kw


def _apply_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        if s:
            k = text.find(s)
            if 0 <= k < cut:
                cut = k
    return text[:cut]
