"""Micro-batching: concurrent requests share one forward pass.

Requests wait in a bounded queue; one worker takes the first, gathers others that ask for the
same labels and prompt language for at most ``max_wait_ms`` or until ``max_batch`` texts, runs
the model once in a thread (the event loop stays responsive), and hands each request its slice
of the results. A request for other labels waits for the next batch, first in line.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emotune.inference.predict import Prediction

#: What a batch shares: the labels asked for (None: the model's own) and the prompt language.
BatchKey = tuple[tuple[str, ...] | None, str | None]
PredictFn = Callable[[list[str], list[list[str]], BatchKey], list[Prediction]]


class QueueFull(Exception):
    """The service is saturated; the request should be retried later (HTTP 503)."""


@dataclass
class _Job:
    texts: list[str]
    contexts: list[list[str]]
    future: asyncio.Future[list[Prediction]]
    key: BatchKey = (None, None)


class MicroBatcher:
    """Merges concurrent prediction requests into batched model calls."""

    def __init__(self, predict: PredictFn, max_batch: int, max_wait_ms: float, queue_size: int) -> None:
        self.predict = predict
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self.batches = 0  # forward passes run; observable in /v1/model for monitoring
        self._worker: asyncio.Task[None] | None = None
        self._held: deque[_Job] = deque()  # taken from the queue for a batch of other labels

    def start(self) -> None:
        """Starts the worker on the running event loop."""
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancels the worker."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(
        self, texts: Sequence[str], contexts: Sequence[Sequence[str]], key: BatchKey = (None, None)
    ) -> list[Prediction]:
        """Queues one request and waits for its predictions.

        Raises:
            QueueFull: When ``queue_size`` requests are already waiting.
        """
        job = _Job(list(texts), [list(c) for c in contexts], asyncio.get_running_loop().create_future(), key)
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull from None
        return await job.future

    def _take_held(self, key: BatchKey) -> _Job | None:
        for job in self._held:
            if job.key == key:
                self._held.remove(job)
                return job
        return None

    async def _gather(self) -> list[_Job]:
        jobs = [self._held.popleft() if self._held else await self.queue.get()]
        key = jobs[0].key
        size, deadline = len(jobs[0].texts), time.monotonic() + self.max_wait
        while size < self.max_batch:
            job = self._take_held(key)
            if job is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
                if job.key != key:  # other labels: the next batch starts with it
                    self._held.append(job)
                    continue
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            texts = [t for job in jobs for t in job.texts]
            contexts = [c for job in jobs for c in job.contexts]
            try:
                results = await asyncio.to_thread(self.predict, texts, contexts, jobs[0].key)
            except Exception as err:  # one failing batch must not kill the worker
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            self.batches += 1
            start = 0
            for job in jobs:
                if not job.future.done():  # a client that went away leaves a cancelled future
                    job.future.set_result(results[start : start + len(job.texts)])
                start += len(job.texts)
