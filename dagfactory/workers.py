"""The worker processes that compile a large batch: how many, and how configs reach them.

Apart from :mod:`dagfactory.build` because a process pool is its own concern, with
its own failure modes: how many workers help (never more than the CPUs or the work),
how much waits in memory for the caller (chunks, a window of them in flight), and
what becomes of the workers when their parent dies. ``build`` decides what to compile
and gathers the results; this module only runs ``compile_one`` over the configs, in
order, in this process or in workers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dagfactory.compile import DefaultsDocuments

if TYPE_CHECKING:
    from dagfactory.compile import Compilation
    from dagfactory.configs import ConfigSource

# Below this many configs to compile, starting worker processes costs more than it saves.
PARALLEL_MIN_CONFIGS = 200
# Worker processes take configs in chunks of at most this many, and each is at most this
# many chunks ahead of the caller: what waits in memory does not grow with the batch.
CHUNK_CONFIGS = 32
CHUNKS_IN_FLIGHT_PER_JOB = 4


def default_jobs(configs: int) -> int:
    """Every CPU this process may use for a large batch; one process for a small one."""
    if configs < PARALLEL_MIN_CONFIGS:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# A _compile_one with its settings bound: (config, recorded_as, sources, *, defaults_documents).
CompileOne = Callable[..., "Compilation"]


def compile_all(
    configs: list[ConfigSource],
    recorded_as: list[str],
    sources_of: Callable[[ConfigSource], dict[Path, bytes]],
    jobs: int,
    compile_one: CompileOne,
) -> Iterator[Compilation]:
    """``compile_one`` of each config, in order, on ``jobs`` worker processes.

    ``compile_one`` (a :func:`dagfactory.build._compile_one` with every setting bound but the defaults
    documents) is sent to each worker with its chunk: a worker knows nothing it is not
    handed. Each defaults file is loaded once for the batch (in a worker, once for
    each chunk).
    """
    if jobs <= 1 or len(configs) <= 1:
        compile_one = functools.partial(
            compile_one, defaults_documents=DefaultsDocuments()
        )
        yield from map(compile_one, configs, recorded_as, map(sources_of, configs))
        return
    # Here, not at the top: multiprocessing costs a small render 20 ms to import.
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    jobs = min(jobs, len(configs))
    size = max(1, min(CHUNK_CONFIGS, len(configs) // (jobs * 8)))
    chunks = (
        (
            configs[start : start + size],
            recorded_as[start : start + size],
            [sources_of(config) for config in configs[start : start + size]],
        )
        for start in range(0, len(configs), size)
    )
    with ProcessPoolExecutor(max_workers=jobs) as executor:
        # A window of chunks in flight, not all of them (as executor.map would): the
        # results of chunks the caller has not taken yet, their files' texts, wait in
        # memory, and the caller (writing files) is often slower than the workers.
        window: deque[Future[list[Compilation]]] = deque()
        for chunk in chunks:
            window.append(executor.submit(compile_chunk, *chunk, compile_one))
            if len(window) > jobs * CHUNKS_IN_FLIGHT_PER_JOB:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()


def compile_chunk(
    configs: list[ConfigSource],
    recorded_as: list[str],
    sources: list[dict[Path, bytes]],
    compile_one: CompileOne,
) -> list[Compilation]:
    """``compile_one`` of each config, in a worker: one round trip for several."""
    defaults_documents = DefaultsDocuments()
    return [
        compile_one(*arguments, defaults_documents=defaults_documents)
        for arguments in zip(configs, recorded_as, sources, strict=True)
    ]
