"""Micro-batching: concurrent requests share one forward pass.

Requests wait in a bounded queue; one worker takes the first, gathers others for at most
``max_wait_ms`` or until ``max_batch`` texts, runs the model once in a thread (the event loop
stays responsive), and hands each request its slice of the results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emotune.inference.predict import Prediction

PredictFn = Callable[[list[str], list[list[str]]], list[Prediction]]


class QueueFull(Exception):
    """The service is saturated; the request should be retried later (HTTP 503)."""


@dataclass
class _Job:
    texts: list[str]
    contexts: list[list[str]]
    future: asyncio.Future[list[Prediction]]


class MicroBatcher:
    """Merges concurrent prediction requests into batched model calls."""

    def __init__(self, predict: PredictFn, max_batch: int, max_wait_ms: float, queue_size: int) -> None:
        self.predict = predict
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self.batches = 0  # forward passes run; observable in /v1/model for monitoring
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the worker on the running event loop."""
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancels the worker."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, texts: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[Prediction]:
        """Queues one request and waits for its predictions.

        Raises:
            QueueFull: When ``queue_size`` requests are already waiting.
        """
        job = _Job(list(texts), [list(c) for c in contexts], asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull from None
        return await job.future

    async def _gather(self) -> list[_Job]:
        jobs = [await self.queue.get()]
        size, deadline = len(jobs[0].texts), time.monotonic() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                job = await asyncio.wait_for(self.queue.get(), remaining)
            except TimeoutError:
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            texts = [t for job in jobs for t in job.texts]
            contexts = [c for job in jobs for c in job.contexts]
            try:
                results = await asyncio.to_thread(self.predict, texts, contexts)
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
