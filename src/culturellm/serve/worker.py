"""The worker: one thread runs every model call; cheapest batch first, requests interleaved; every
request cancellable and held to its time limit across all of its prompts.

Fair sharing: among jobs of equal cost the request that has had the fewest of its jobs run goes first,
and a batch takes one job of each waiting request in turn (round robin), so a big request (256 prompts)
shares the worker with the requests that arrive after it instead of holding it until it is done.

A request's jobs share one `Budget`: its cancel flag (set when the client disconnects) and its deadline
(`Limits.request_seconds` after the first of its jobs starts). A job is settled exactly once, and a
future its waiter already gave up on is left alone, so nothing one request does (or one exception in
one batch) can stop the thread; `/health` reports a dead or stuck worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Literal

from culturellm.llm.base import SamplingParams
from culturellm.llm.records import Completion
from culturellm.serve.host import ModelHost

LOG = logging.getLogger("culturellm.serve")
STUCK_GRACE_S = 60.0  # a batch may overrun its deadline by one decoding step or forward pass


class Cancelled(Exception):
    """The client went away before its request was answered."""


class TimedOut(Exception):
    """The request's time limit passed before all of its prompts ran."""


class WorkerDown(Exception):
    """The worker thread is not running: nothing can be answered."""


@dataclass
class Budget:
    """What one HTTP request may spend, shared by all of its jobs: a cancel flag and a deadline set
    when the first of its jobs starts (worker thread)."""

    seconds: float
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")
    timed_out: bool = False
    ran: int = 0  # jobs of this request taken into a batch so far (the fair-share order)

    def start(self) -> None:
        if self.deadline == float("inf"):
            self.deadline = time.monotonic() + self.seconds

    def expired(self) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def should_stop(self) -> bool:
        """Asked between decoding steps and forward passes: the client is gone or time is up."""
        return self.expired() or self.cancel.is_set()

    def error(self) -> Exception:
        return Cancelled() if self.cancel.is_set() else TimedOut()


_SEQ = itertools.count()


@dataclass
class Job:
    """One model call of a request: generate (`prompt`: token ids) or logprobs (`prompt`: a list of
    token-id sequences, one request's); `logprobs`: top-k per new token, or per prompt token."""

    route: str
    kind: Literal["generate", "logprobs"]
    prompt: Any
    params: SamplingParams
    logprobs: int | None
    budget: Budget
    future: Future = field(default_factory=Future)
    queued: float = field(default_factory=time.monotonic)
    seq: int = field(default_factory=lambda: next(_SEQ))

    @property
    def group(self) -> tuple[Any, ...]:
        return (self.route, self.kind, self.params, self.logprobs)

    @property
    def cost(self) -> int:
        return 0 if self.kind == "logprobs" else int(self.params.max_tokens)

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Give the waiter its answer, once; a future cancelled by its waiter is left as it is."""
        if self.future.done():
            return
        with contextlib.suppress(InvalidStateError):  # cancelled by the waiter meanwhile
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)


class Worker:
    """Runs every model call on one thread. Jobs wait in a queue; each round takes the waiting jobs of
    the cheapest group (fewest new tokens; log-prob jobs cost 0) into one batch, except that a job
    waiting longer than `max_wait_s` goes first."""

    def __init__(
        self,
        host: ModelHost,
        batch_size: int = 8,
        wait_s: float = 0.005,
        max_wait_s: float = 30.0,
        stuck_after_s: float = 300.0 + STUCK_GRACE_S,
    ) -> None:
        self.host = host
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s
        self.stuck_after_s = stuck_after_s
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.batches = 0  # batches run (for tests and logs)
        self.largest = 0
        self.cancelled = 0
        self.failed = 0  # batches whose model call raised
        self.busy = False
        self.batch_started = 0.0
        self._thread = threading.Thread(target=self._run, name="culturellm-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Job:
        if not self._thread.is_alive():
            raise WorkerDown()
        self.queue.put(job)
        return job

    def close(self) -> None:
        self.queue.put(None)

    def state(self) -> str:
        """ "ok", "dead" (the thread is gone) or "stuck" (one batch ran far past any time limit)."""
        if not self._thread.is_alive():
            return "dead"
        if self.busy and time.monotonic() - self.batch_started > self.stuck_after_s:
            return "stuck"
        return "ok"

    def _pick(self, pending: list[Job]) -> list[Job]:
        """The next batch: the group of the cheapest job (the least-served request first among equals;
        a job waiting over `max_wait_s` goes first), its jobs taken one per request in turn."""
        now = time.monotonic()
        oldest = min(pending, key=lambda j: j.seq)
        head = (
            oldest
            if now - oldest.queued > self.max_wait_s
            else min(pending, key=lambda j: (j.cost, j.budget.ran, j.seq))
        )
        turns: dict[int, int] = {}
        ranked = []
        for j in sorted(pending, key=lambda j: j.seq):
            if j.group == head.group:
                turn = turns[id(j.budget)] = turns.get(id(j.budget), -1) + 1
                ranked.append((j.budget.ran + turn, j.seq, j))
        batch = [j for _, _, j in sorted(ranked, key=lambda r: r[:2])][: self.batch_size]
        for j in batch:
            j.budget.ran += 1
        return batch

    def _take(self, pending: list[Job]) -> bool:
        """Move what is queued into `pending` (waiting for one job when there is none); False: closed."""
        if not pending:
            job = self.queue.get()
            if job is None:
                return False
            pending.append(job)
        time.sleep(self.wait_s)  # let concurrent requests arrive
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            pending.append(job)

    def _run(self) -> None:
        pending: list[Job] = []
        while self._take(pending):
            for j in [j for j in pending if j.budget.cancel.is_set()]:
                self.cancelled += 1
                j.settle(error=Cancelled())
            pending = [j for j in pending if not j.budget.cancel.is_set()]
            if not pending:
                continue
            batch = self._pick(pending)
            pending = [j for j in pending if all(j is not b for b in batch)]
            self.busy, self.batch_started = True, time.monotonic()
            try:
                self._run_batch(batch)
            except Exception as e:  # never let one batch stop the thread
                LOG.exception("serving a batch failed")
                for j in batch:
                    j.settle(error=e)
            finally:
                self.busy = False

    def _run_batch(self, batch: list[Job]) -> None:
        for j in batch:
            j.budget.start()
        late = [j for j in batch if j.budget.should_stop()]  # out of time (or gone) before it ran
        for j in late:
            self.cancelled += j.budget.cancel.is_set()
            j.settle(error=j.budget.error())
        batch = [j for j in batch if all(j is not x for x in late)]
        if not batch:
            return
        head = batch[0]
        try:
            with self.host.use(head.route) as chat:
                if head.kind == "logprobs":
                    outs: list[Any] = chat.prompt_logprobs(
                        [j.prompt for j in batch],
                        head.logprobs or 0,
                        stop_checks=[j.budget.should_stop for j in batch],
                    )
                else:
                    outs = chat.generate_ids(
                        [j.prompt for j in batch],
                        head.params,
                        logprobs=head.logprobs,
                        stop_checks=[j.budget.should_stop for j in batch],
                    )
        except Exception as e:  # reported to every waiting request
            LOG.exception("model call failed")
            self.failed += 1
            for j in batch:
                j.settle(error=e)
            return
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        for j, o in zip(batch, outs, strict=True):
            self._finish(j, o)

    def _finish(self, job: Job, out: Any) -> None:
        if job.budget.cancel.is_set():
            self.cancelled += 1
            job.settle(error=Cancelled())
        elif out is None:  # a log-prob job stopped by its time limit
            job.settle(error=job.budget.error())
        elif job.budget.timed_out and isinstance(out, Completion):
            job.settle(dataclasses.replace(out, finish_reason="length"))
        else:
            job.settle(out)


async def wait_for(worker: Worker, request: Any, jobs: list[Job]) -> list[Any]:
    """The jobs' results; cancels the request's jobs when its client disconnects first."""
    for j in jobs:
        worker.submit(j)
    gathered = asyncio.gather(*[asyncio.wrap_future(j.future) for j in jobs])
    try:
        while True:
            done, _ = await asyncio.wait({gathered}, timeout=0.05)
            if done:
                return gathered.result()
            if await request.is_disconnected():
                raise Cancelled()
            if worker.state() == "dead":
                raise WorkerDown()
    except BaseException:
        for j in jobs:
            j.budget.cancel.set()
        gathered.cancel()
        with contextlib.suppress(BaseException):
            await gathered
        raise
