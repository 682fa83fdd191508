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
import signal
import sys
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
# A worker given fewer configs than this costs more to start than it saves.
MIN_CONFIGS_PER_WORKER = 8
# prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(configs: int) -> int:
    """Every CPU this process may use for a large batch; one process for a small one."""
    return 1 if configs < PARALLEL_MIN_CONFIGS else usable_cpus()


def useful_workers(jobs: int, configs: int) -> int:
    """How many of the ``jobs`` asked for help with ``configs`` configs: no more than
    the CPUs (more processes only take turns on them) nor than the work can keep busy
    (``--jobs 1000`` on 300 configs started 300 processes, 15 times slower)."""
    return max(1, min(jobs, usable_cpus(), -(-configs // MIN_CONFIGS_PER_WORKER)))


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
    jobs = useful_workers(jobs, len(configs))
    if jobs <= 1:
        compile_one = functools.partial(
            compile_one, defaults_documents=DefaultsDocuments()
        )
        yield from map(compile_one, configs, recorded_as, map(sources_of, configs))
        return
    # Here, not at the top: multiprocessing costs a small render 20 ms to import.
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    context = multiprocessing.get_context()
    # Forked workers are this process's children; a forkserver's are the server's.
    parent = os.getpid() if context.get_start_method() == "fork" else None
    size = max(1, min(CHUNK_CONFIGS, len(configs) // (jobs * 8)))
    chunks = (
        (
            configs[start : start + size],
            recorded_as[start : start + size],
            [sources_of(config) for config in configs[start : start + size]],
        )
        for start in range(0, len(configs), size)
    )
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=die_with_parent,
        initargs=(parent,),
    ) as executor:
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


def die_with_parent(parent: int | None) -> None:
    """Start a worker so that it ends when the process that started it ends.

    A render killed with SIGKILL runs no cleanup: its workers, blocked reading a pipe
    whose writing end they hold themselves, would wait forever under PID 1. Linux
    kills them instead (PR_SET_PDEATHSIG); a parent that died before that was set is
    seen as a new parent (``parent``: the pid expected, None when not known). SIGTERM
    is the default action again: a handler the render installed is not the worker's.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)
