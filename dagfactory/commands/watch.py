"""``--watch``, which ``render`` and ``validate`` share: the command run again, in this
process, each time a file it reads is saved.

Saving while editing a config should show at once what it renders to or what is wrong
with it, without a command typed each time. The files are watched by ``watchfiles``
(an optional extra, ``dagfactory[watch]``: render, run on every commit, does not need
it), which also debounces an editor's burst of writes into one change. Each run is
the command itself, so a broken config writes nothing and the last good files stay;
the render cache makes a run after a one-file change cheap.

What is watched: the configs folders given (recursively), the folders of the config
files given and of the defaults files that apply to them (a file is replaced by most
editors' saves, which a watch on the file itself loses), and the templates folder.
Only changes to those files start a run: never the output folder or ``.dagfactory/``,
which a render writes itself.

Ctrl-C or SIGTERM stops watching with exit code 0: a watch ends only that way, and
what was written by then is whole (a render interrupted midway writes nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dagfactory.commands.batch import sigterm_interrupts
from dagfactory.configs import (
    CONFIG_SUFFIXES,
    defaults_candidates,
    display_name,
    forget_lookups,
)
from dagfactory.problems import (
    EXIT_OK,
    EXIT_USAGE,
    DagfactoryError,
    Problem,
    UsageError,
)
from dagfactory.report import Outcome, Reporter

INSTALL_HINT = "--watch needs watchfiles: pip install 'dagfactory[watch]'"
# What a config, a defaults file or a template is named: a change to one is never an
# editor's temporary file, even if it is gone (deleted) by the time the run starts.
_INPUT_SUFFIXES = (*CONFIG_SUFFIXES, ".j2")
# How long the watcher waits for a change before it comes back empty (milliseconds).
_WAKE_MS = 200
# How many changed files a run's header names before "and N more".
_NAMED_CHANGES = 3


def add_watch(parser: argparse.ArgumentParser, what: str) -> None:
    """``--watch``; ``what`` says what each save starts."""
    parser.add_argument(
        "--watch",
        action="store_true",
        help=f"{what} again each time a config, defaults file or template is saved; "
        "Ctrl-C stops it (exit code 0). Needs pip install 'dagfactory[watch]'",
    )


@dataclass(frozen=True)
class Watched:
    """The files whose change starts a run: everything in ``folders``, each of
    ``files``, nothing in ``ignored``; all absolute, symlinks resolved."""

    folders: frozenset[Path]
    files: frozenset[Path]
    ignored: frozenset[Path]

    @classmethod
    def of(
        cls,
        paths: Iterable[Path],
        *,
        templates: Path | None = None,
        ignored: Iterable[Path] = (),
    ) -> Watched:
        """What a command given ``paths`` (configs) and ``templates`` reads, but
        for ``ignored`` (what it writes); a path that does not exist is an error."""
        folders, files = set(), set()
        for path in [*paths, *([templates] if templates is not None else [])]:
            if not path.exists():
                raise UsageError(f"{path}: no such file or folder")
            absolute = path.resolve()
            (folders if absolute.is_dir() else files).add(absolute)
            config_folder = absolute if absolute.is_dir() else absolute.parent
            files.update(defaults_candidates(config_folder))
        return cls(
            frozenset(folders),
            frozenset(files),
            frozenset(path.resolve() for path in ignored),
        )

    def roots(self) -> list[Path]:
        """The folders to watch: each folder, each file's folder, none twice."""
        candidates = sorted(self.folders | {file.parent for file in self.files})
        return [
            folder
            for folder in candidates
            if not any(
                folder != other and folder.is_relative_to(other) for other in candidates
            )
        ]

    def concerns(self, path: Path) -> bool:
        """Whether a change to ``path`` (absolute) starts a run."""
        path = path.resolve()
        if any(path.is_relative_to(folder) for folder in self.ignored):
            return False
        return path in self.files or any(
            path.is_relative_to(folder) for folder in self.folders
        )


def watch(
    run: Callable[[], Outcome], reporter: Reporter, watched: Watched, *, doing: str
) -> Outcome:
    """Run ``run`` now and after each change to a watched file, each run's outcome
    printed under a timestamped header saying what changed and what is ``doing``;
    until Ctrl-C or SIGTERM, which end it with exit code 0."""
    try:
        import watchfiles
    except ImportError:
        return Outcome(EXIT_USAGE, [Problem.general(INSTALL_HINT)])
    roots = watched.roots()
    ignore = watchfiles.DefaultFilter()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        return ignore(change, path) and watched.concerns(Path(path))

    # A change every _WAKE_MS at most comes back empty: the first says that the
    # watch has started, so that the first run sees every save after it.
    changes_seen = watchfiles.watch(
        *roots, watch_filter=wanted, rust_timeout=_WAKE_MS, yield_on_timeout=True
    )
    with (
        contextlib.suppress(KeyboardInterrupt),
        sigterm_interrupts(),
        contextlib.closing(changes_seen),
    ):
        next(changes_seen)
        _run_once(run, reporter, doing)
        shown = ", ".join(display_name(root) + "/" for root in roots)
        reporter.say(f"watching {shown} (Ctrl-C stops)")
        for changes in changes_seen:
            saved = _saved({Path(path) for _, path in changes})
            if saved:
                _run_once(run, reporter, f"{_changed(saved)}: {doing}")
    reporter.say("stopped watching")
    return Outcome(EXIT_OK)


def _run_once(run: Callable[[], Outcome], reporter: Reporter, header: str) -> None:
    """One run, its outcome printed (an error that ends the command included)."""
    reporter.say(f"[{time.strftime('%H:%M:%S')}] {header}")
    forget_lookups()
    try:
        outcome = run()
    except DagfactoryError as exc:
        outcome = Outcome(exc.exit_code, [exc.problem()])
    reporter.report(outcome)


def _saved(paths: set[Path]) -> set[Path]:
    """The changed files but an editor's temporary ones (written and gone before the
    run, and named as no config or template is)."""
    return {path for path in paths if path.suffix in _INPUT_SUFFIXES or path.exists()}


def _changed(paths: set[Path]) -> str:
    """``a.yaml, b.yaml changed``; past a few files, ``and N more``."""
    names = sorted(display_name(path) for path in paths)
    shown = ", ".join(names[:_NAMED_CHANGES])
    if len(names) > _NAMED_CHANGES:
        shown += f" and {len(names) - _NAMED_CHANGES} more"
    return f"{shown} changed"
