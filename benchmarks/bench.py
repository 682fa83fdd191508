"""dagfactory's benchmarks, measured side by side in one run: ``./dev bench [NAME ...]``.

- render: render throughput, whole process (`dagfactory render` as a subprocess)
- noop: no-op re-render of unchanged configs (`render` and `render --check`)
- keystroke: what a save costs: `validate` of one edited config, `render` of one
  edited config among 1,000
- parse: DagBag fill time in Airflow: dagfactory's files, hand-written DAGs, astronomer's
  dag-factory (installed only in benchmarks/.venv-dagfactory-astro), and trainer
  modules that take a second to import (the parse must not pay for them)
- processor: Airflow's own `airflow dag-processor` over the same three and dagfactory's
  bundled output (processor.py), and over bundled output and dag-factory at 5,000 DAGs
- taskstart: a fresh process loading one task's DAG file as a worker does, in the
  task's parsing context and from source, at growing project sizes (task_start.py)

Each render measurement runs in a fresh process; each parse variant runs in fresh
processes that fill the DagBag several times (the first fill of a process pays for the
imports, the later ones are the steady cost of a parse). The table gives medians.
This is not part of the test suite and asserts nothing about time. Methodology and
results: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import corpus
import processor
import task_start
from dagbag_fill import MARKER

sys.path.insert(0, str(corpus.ROOT / "compat"))
from run import UV, build_wheel  # noqa: E402 (compat/ is not a package)

ROOT = corpus.ROOT
ASTRO_VENV = ROOT / "benchmarks" / ".venv-dagfactory-astro"
WHEEL_VENV = ROOT / "benchmarks" / ".venv-wheel"
# The `dagfactory` every benchmark runs: the wheel install (set by main).
DAGFACTORY = Path(sys.executable).parent / "dagfactory"
FILL = Path(__file__).resolve().parent / "dagbag_fill.py"
TASK_START = Path(__file__).resolve().parent / "task_start.py"
PARSE_DAGS = 200  # or the largest of --sizes, if smaller
# DagBag fills per process: the first pays for importing the operators, the later ones
# are the steady cost of parsing the folder again, as the DAG processor keeps doing.
FILLS = 8
RENDER_TARGETS = {1000: 0.5, 10000: 5}  # seconds, whole process
SETTLE_SECONDS = 2.5  # older than the render cache's two seconds


class Table:
    """Rows printed as they are measured, so a long run shows progress."""

    HEADER = ("benchmark", "runs", "median", "per unit", "peak RSS", "note")

    def __init__(self) -> None:
        self.widths = (62, 4, 8, 19, 8, 0)
        self.row(*self.HEADER)
        print("-" * 140, flush=True)

    def row(self, *cells: str) -> None:
        line = "  ".join(
            cell.ljust(width) if width else cell
            for cell, width in zip(cells, self.widths, strict=True)
        )
        print(line.rstrip(), flush=True)


class Measurement(NamedTuple):
    seconds: float  # wall
    cpu: float  # user + system, of the process and its workers
    rss: int  # peak resident set, KiB, the largest of the process and its workers


def run_timed(command: list[str], cwd: Path, env: dict | None = None) -> Measurement:
    """Run ``command`` to the end and measure it (with Python's default bytecode cache)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode not in (0, 1) or "error" in stderr:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    return Measurement(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def render(
    configs: Path, out: Path, *extra: str, script: Path | None = None
) -> list[str]:
    """The command line of a render, by the wheel install's script unless told otherwise."""
    return [
        str(script or DAGFACTORY),
        "render",
        str(configs),
        "--out",
        str(out),
        *extra,
    ]


BUNDLED_PROJECT = '[tool.dagfactory]\noutput = "bundled"\n'


def render_bundled(configs: Path, out: Path, work: Path) -> Path:
    """Render ``configs`` into ``out`` as bundled output: from a project folder of its
    own whose pyproject.toml asks for it."""
    project = Path(tempfile.mkdtemp(dir=work, prefix="bundled-project-"))
    (project / "pyproject.toml").write_text(BUNDLED_PROJECT, "utf-8")
    run_timed(render(configs, out), project)
    return out


def shard_of(folder: Path, dag_id: str) -> str:
    """The shard file of a bundled output folder that lists ``dag_id``."""
    listed = f'    "{dag_id}": '
    for shard in sorted(folder.glob("dagfactory_shard_*.py")):
        if listed in shard.read_text("utf-8"):
            return shard.name
    raise RuntimeError(f"no shard of {folder} lists {dag_id}")


def install_wheel(work: Path) -> Path:
    """dagfactory as a user installs it, and its ``dagfactory`` script: a wheel built
    from (a copy of) this tree, installed non-editable into a virtualenv of its own
    with only what rendering needs, as pre-commit's hook environment has it."""
    wheel = build_wheel(work)  # as the compatibility run builds it
    uv = Path(UV)
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    python = WHEEL_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [uv, "venv", "-q", "--python", sys.executable, WHEEL_VENV], **quiet
        )
    install = [uv, "pip", "install", "-q", "--python", python, "--reinstall-package"]
    install += ["dagfactory", "-c", ROOT / "constraints.txt", wheel]
    subprocess.run(install, **quiet)
    return WHEEL_VENV / "bin" / "dagfactory"


def median_of(runs: int, measure: Callable[[], Measurement]) -> Measurement:
    """Median wall and CPU time of ``runs`` measurements, and the largest peak RSS."""
    results = [measure() for _ in range(runs)]
    return Measurement(
        statistics.median(r.seconds for r in results),
        statistics.median(r.cpu for r in results),
        max(r.rss for r in results),
    )


def measured_row(
    table: Table, name: str, runs: int, m: Measurement, count: int, unit: str, note: str
) -> None:
    table.row(
        name,
        str(runs),
        f"{m.seconds:.2f} s",
        f"{count / m.seconds:,.0f} {unit}/s",
        f"{m.rss / 1024:.0f} MB",
        f"CPU {m.cpu:.2f} s" + (f"; {note}" if note else ""),
    )


def bench_render(table: Table, work: Path, runs: int, sizes: list[int]) -> None:
    """Whole-process renders into an empty folder, with no render cache."""
    figures = {}
    cases = [(n, 3, ()) for n in sizes]
    cases += [(sizes[-1], 3, ("--jobs", "1"))]
    cases += [(1, 1000, ())]
    for count, trainers, extra in cases:
        configs = corpus.write_configs(
            work / f"configs-{count}-{trainers}", count, trainers
        )

        def once(configs: Path = configs, extra: tuple = extra) -> Measurement:
            scratch = Path(tempfile.mkdtemp(dir=work))  # own cwd: no render cache
            try:
                return run_timed(render(configs, scratch / "out", *extra), scratch)
            finally:
                shutil.rmtree(scratch)

        n = runs if count <= 1000 else max(1, runs // 2)
        m = figures[(count, extra)] = median_of(n, once)
        jobs = " ".join(extra) or "default jobs"
        if trainers == 3:
            plural = "s" if count != 1 else ""
            name = f"render {count:,} config{plural} ({jobs})"
            target = RENDER_TARGETS.get(count) if not extra else None
            note = f"target <= {target} s" if target else ""
            measured_row(table, name, n, m, count, "configs", note)
        else:
            name = f"render 1 config with {trainers:,} trainers"
            measured_row(table, name, n, m, trainers, "trainers", "")
    if 1000 in sizes:
        disk_reference(table, work, runs, figures[(1000, ())])
        render_in_memory(table, work, runs)
    big = sizes[-1]
    if 1000 in sizes and big > 1000:
        small_rss, big_rss = figures[(1000, ())].rss, figures[(big, ())].rss
        table.row(
            f"  peak memory, {big:,} configs / 1,000 configs",
            "",
            f"{big_rss / small_rss:.2f}x",
            f"{(big_rss - small_rss) / (big - 1000):.1f} KB/config",
            "",
            "target: flat (1.00x)",
        )
    table.row(
        f"  {big:,} configs: time with --jobs 1 / default jobs",
        "",
        f"{figures[(big, ('--jobs', '1'))].seconds / figures[(big, ())].seconds:.2f}x",
        "",
        "",
        f"default jobs here: {os.cpu_count()}",
    )


def disk_reference(table: Table, work: Path, runs: int, rendered: Measurement) -> None:
    """What this disk takes to create 1,000 new files of a DAG file's size, plainly
    (no temporary file, rename or fsync): the part of a render no code change removes."""
    sample = next((work / "configs-1000-3").iterdir())
    payload = render_size_sample(sample, work)

    def once() -> Measurement:
        folder = Path(tempfile.mkdtemp(dir=work))
        started, cpu = time.perf_counter(), time.process_time()
        for index in range(1000):
            (folder / f"dag_{index:04d}.py").write_bytes(payload)
        measured = Measurement(
            time.perf_counter() - started, time.process_time() - cpu, 0
        )
        shutil.rmtree(folder)
        return measured

    m = median_of(runs, once)
    table.row(
        f"  disk alone: create 1,000 files of {len(payload):,} bytes",
        str(runs),
        f"{m.seconds:.2f} s",
        "",
        "",
        f"{m.seconds / rendered.seconds:.0%} of the 1,000-config render; plain writes",
    )


def render_in_memory(table: Table, work: Path, runs: int) -> None:
    """The 1,000-config render again, its output on tmpfs: the render less the disk."""
    memory = Path("/dev/shm")
    if not (memory.is_dir() and os.access(memory, os.W_OK)):
        return
    configs = work / "configs-1000-3"

    def once() -> Measurement:
        scratch = Path(tempfile.mkdtemp(dir=work))  # own cwd: no render cache
        out = Path(tempfile.mkdtemp(dir=memory, prefix="dagfactory-bench-"))
        try:
            return run_timed(render(configs, out / "out"), scratch)
        finally:
            shutil.rmtree(scratch)
            shutil.rmtree(out)

    m = median_of(runs, once)
    name = "render 1,000 configs, output on tmpfs"
    measured_row(table, name, runs, m, 1000, "configs", "/dev/shm: no disk")


def render_size_sample(config: Path, work: Path) -> bytes:
    """The DAG file one of the benchmark's configs renders to."""
    scratch = Path(tempfile.mkdtemp(dir=work))
    try:
        run_timed(render(config, scratch / "out"), scratch)
        (output,) = (scratch / "out").iterdir()
        return output.read_bytes()
    finally:
        shutil.rmtree(scratch)


def bench_noop(table: Table, work: Path, runs: int) -> None:
    """1,000 unchanged configs rendered again: with the render cache, and without it."""
    configs = corpus.write_configs(work / "noop-configs", 1000)
    home = work / "noop"
    home.mkdir()
    out = home / "out"
    run_timed(render(configs, out), home)
    # A project's files are older than two seconds: the render cache knows them by
    # their stat once a render has seen them settled.
    time.sleep(SETTLE_SECONDS)
    run_timed(render(configs, out), home)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for name, extra in (("render", ()), ("render --check", ("--check",))):
        m = median_of(
            runs, lambda extra=extra: run_timed(render(configs, out, *extra), home)
        )
        label = f"no-op {name}, 1,000 configs"
        note = "render cache warm, every file settled; target <= 0.1 s"
        measured_row(table, label, runs, m, 1000, "configs", note)

    def uncached() -> Measurement:
        shutil.rmtree(home / ".dagfactory", ignore_errors=True)
        return run_timed(render(configs, out), home)

    m = median_of(runs, uncached)
    label = "no-op render, 1,000 configs, no cache"
    measured_row(table, label, runs, m, 1000, "configs", "every config compiled")
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    kept = "yes" if before == after else "NO"
    table.row("  files untouched (same names and mtimes)", "", kept, "", "", "")


class FillProcess:
    """A fresh process with its own AIRFLOW_HOME and default settings that fills a
    DagBag from ``folder`` each time it is asked (see dagbag_fill.py).

    Without ``bytecode`` the folder has no ``__pycache__`` and Python writes none, so
    every file of it is compiled from source on every fill, as on a read-only dags
    folder or the first parse after a change; with it, every fill loads the cached
    bytecode, as a DAG processor re-parsing unchanged files does.
    """

    def __init__(self, variant: Variant, work: Path, *, bytecode: bool) -> None:
        python, self.folder, pythonpath = variant
        self.home = Path(tempfile.mkdtemp(dir=work, prefix="airflow-home-"))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.folder),
            "PYTHONPATH": str(pythonpath),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [str(python), str(FILL), str(self.folder)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def fill(self) -> dict:
        """One fill: its wall and CPU seconds."""
        try:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the process has ended: _result reports why
        return self._result()

    def finish(self) -> dict:
        """End the process; what its last fill found (DAGs, tasks, edges, errors)."""
        self.process.stdin.close()
        figures = self._result()
        self.process.wait()
        self.close()
        if figures["errors"] or figures["dags"] == 0:
            raise RuntimeError(f"DagBag fill of {self.folder}: {figures}")
        return figures

    def close(self) -> None:
        """Stop the process if it still runs; release its pipes, log and home."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.process.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def _result(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(MARKER):
                return json.loads(line.removeprefix(MARKER))
        self.stderr.seek(0)
        raise RuntimeError(
            f"DagBag fill of {self.folder} failed:\n{self.stderr.read()[-3000:]}"
        )


Variant = tuple[Path, Path, Path]  # python, dags folder, PYTHONPATH


def fill_medians(
    variants: dict[str, Variant], work: Path, runs: int, *, bytecode: bool
) -> dict[str, dict]:
    """Per variant, median seconds of the first fill of a process and of the later fills.

    ``runs`` times, one fresh process per variant fills FILLS times; the processes take
    turns, one fill at a time and in a rotating order, so that the machine's slower
    moments fall on all alike.
    """
    for _, folder, _ in variants.values():
        for cache in folder.rglob("__pycache__"):
            shutil.rmtree(cache)
    if bytecode:  # one parse first, to write the bytecode the measured ones load
        for variant in variants.values():
            warm = FillProcess(variant, work, bytecode=True)
            try:
                warm.fill()
                warm.finish()
            finally:
                warm.close()
    fills: dict[str, list[list[dict]]] = {name: [] for name in variants}
    found: dict[str, dict] = {}
    imported: dict[str, set[str]] = {name: set() for name in variants}
    for _ in range(runs):
        processes = {}
        try:
            for name, variant in variants.items():
                processes[name] = FillProcess(variant, work, bytecode=bytecode)
            names = list(processes)
            rounds = [  # each round starts with the next variant: no fixed neighbours
                {name: processes[name].fill() for name in names[i:] + names[:i]}
                for i in (n % len(names) for n in range(FILLS))
            ]
            for name, process in processes.items():
                fills[name].append([each[name] for each in rounds])
                found[name] = process.finish()
                imported[name].update(found[name]["trainer_modules_imported"])
        finally:
            for process in processes.values():
                process.close()
    medians = {}
    for name, processes in fills.items():
        later = [fill for process in processes for fill in process[1:]]
        medians[name] = {
            "seconds": statistics.median(f["seconds"] for f in later),
            "cpu_seconds": statistics.median(f["cpu_seconds"] for f in later),
            "first": statistics.median(process[0]["seconds"] for process in processes),
            "fills": len(later),
            "shape": {key: found[name][key] for key in ("dags", "tasks", "edges")},
            "imported": sorted(imported[name]),
        }
    return medians


def astro_python() -> Path:
    """The benchmark's own virtualenv with astronomer's dag-factory (made on first use)."""
    python = ASTRO_VENV / "bin" / "python"
    if not python.exists():
        print(
            f"bench: installing dag-factory into {ASTRO_VENV.relative_to(ROOT)} ...",
            file=sys.stderr,
            flush=True,
        )
        subprocess.run([sys.executable, "-m", "venv", str(ASTRO_VENV)], check=True)
        airflow = next(
            line.strip()
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.startswith("apache-airflow==")
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-c",
                str(ROOT / "constraints.txt"),
                "dag-factory",
                airflow,
            ],
            check=True,
        )
    return python


def package_version(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def bench_parse(table: Table, work: Path, runs: int, count: int) -> None:
    """``count`` DAGs three ways, and dagfactory's with trainers slow to import."""
    python = Path(sys.executable)
    modules = work / "modules"
    modules.mkdir()
    (modules / "light_trainers.py").write_text(
        "def train_model(**kwargs):\n    return 1.0\n"
    )
    corpus.write_heavy_module(modules, "heavy_trainers")
    folders = {}
    for module in ("light_trainers", "heavy_trainers"):
        configs = corpus.write_configs(
            work / f"parse-configs-{module}", count, module=module
        )
        folders[module] = work / f"generated-{module}"
        run_timed(render(configs, folders[module]), work)
    hand = corpus.write_handwritten(
        work / "handwritten", count, module="light_trainers"
    )
    astro = corpus.write_astro(work / "astro", count, module="light_trainers")
    astro_py = astro_python()
    variants = {
        "a": (python, folders["light_trainers"], modules),
        "b": (python, hand, modules),
        "c": (astro_py, astro, modules),
        "heavy": (python, folders["heavy_trainers"], modules),
    }
    version = package_version(astro_py, "dag-factory")
    labels = {
        "a": "(a) dagfactory-generated",
        "b": "(b) hand-written Python",
        "c": f"(c) astronomer dag-factory {version}",
        "heavy": "(a) with trainers that take 1 s to import",
    }
    for bytecode in (False, True):
        medians = fill_medians(variants, work, runs, bytecode=bytecode)
        shapes = {json.dumps(m["shape"]) for m in medians.values()}
        same = "same DAGs, tasks, edges" if len(shapes) == 1 else f"DIFFER: {shapes}"
        mode = "bytecode cached" if bytecode else "compiled from source"
        for name, label in labels.items():
            m = medians[name]
            table.row(
                f"parse {count}: {label}",
                str(m["fills"]),
                f"{m['seconds']:.3f} s",
                f"{m['seconds'] / count * 1000:.2f} ms/DAG",
                "",
                f"CPU {m['cpu_seconds']:.3f} s; first fill {m['first']:.2f} s; {mode}"
                + (f"; {same}" if name == "a" else "")
                + (
                    f"; imported: {', '.join(m['imported']) or 'none'}"
                    if name == "heavy"
                    else ""
                ),
            )
        for top, bottom, label, target in (
            ("a", "b", "generated / hand-written", "<= 1.00"),
            ("a", "c", "generated / dag-factory", "<= 0.50"),
            ("heavy", "a", "1 s-import trainers / light", "< 1.05"),
        ):
            ratio = {
                key: medians[top][key] / medians[bottom][key]
                for key in ("seconds", "cpu_seconds", "first")
            }
            table.row(
                f"  ratio {top}/{bottom} ({label})",
                "",
                f"{ratio['seconds']:.2f}x",
                "",
                "",
                f"CPU {ratio['cpu_seconds']:.2f}x; first fill {ratio['first']:.2f}x; target {target}",
            )


def bench_keystroke(table: Table, work: Path, runs: int) -> None:
    """What an editor or pre-commit pays on a save: whole processes, bytecode cached."""
    home = work / "keystroke"
    configs = corpus.write_configs(home / "configs", 1000)
    one = configs / f"{corpus.variation(0)['dag']['dag_id']}.yaml"
    out = home / "out"
    run_timed(render(configs, out), home)  # the repository's render, cache warm
    time.sleep(SETTLE_SECONDS)
    run_timed(render(configs, out), home)  # and every file settled (see bench_noop)
    text = one.read_text("utf-8")
    edits = iter(range(10**6))

    def edit() -> None:
        """Save ``one`` with a new description: the render cache has not seen it."""
        one.write_text(text.replace("Variation 0 ", f"Variation 0 edit {next(edits)} "))

    def timed(command: list[str], edited: bool) -> Measurement:
        if edited:
            edit()
        return run_timed(command, home)

    cases = [("python -c pass (the floor)", [sys.executable, "-c", "pass"], False, "")]
    # The wheel install is what users run; this repository's .venv (an editable install
    # beside Airflow and its many libraries) shows what such an environment adds.
    editable = Path(sys.executable).parent / "dagfactory"
    for install, script in (("wheel", DAGFACTORY), ("editable + Airflow", editable)):
        cases += [
            (
                f"dagfactory --version ({install})",
                [str(script), "--version"],
                False,
                "",
            ),
            (
                f"validate one.yaml, just edited ({install})",
                [str(script), "validate", str(one)],
                True,
                "target <= 0.10 s",
            ),
            (
                f"render 1 config of 1,000, just edited ({install})",
                render(configs, out, script=script),
                True,
                "render cache warm for the others; target <= 0.2 s",
            ),
        ]
    for label, command, edited, note in cases:
        m = median_of(runs, lambda c=command, e=edited: timed(c, e))
        measured_row(table, label, runs, m, 1, "runs", note)
    one.write_text(text, "utf-8")


def bench_processor(table: Table, work: Path, sizes: list[int], runs: int) -> None:
    """``airflow dag-processor`` over the same DAGs four ways at each of ``sizes`` (beyond
    1,000: bundled output and dag-factory alone, the others take many minutes); see
    processor.py."""
    python, astro_py = Path(sys.executable), astro_python()
    modules = trainer_modules(work / "processor-modules")
    database = processor.migrated_database(python, work)
    version = package_version(astro_py, "dag-factory")
    for count in sizes:
        folder = work / f"processor-{count}"
        configs = corpus.write_configs(
            folder / "configs", count, module="light_trainers"
        )
        generated = folder / "generated"
        run_timed(render(configs, generated), work)
        variants = {
            "a": ("(a) dagfactory, one file per DAG", python, generated),
            "b": (
                "(b) hand-written Python",
                python,
                corpus.write_handwritten(
                    folder / "handwritten", count, module="light_trainers"
                ),
            ),
            "c": (
                f"(c) dag-factory {version}",
                astro_py,
                corpus.write_astro(folder / "astro", count, module="light_trainers"),
            ),
            "d": (
                "(d) dagfactory, bundled",
                python,
                render_bundled(configs, folder / "bundled", work),
            ),
        }
        if count > 1000:
            variants = {name: variants[name] for name in ("c", "d")}
        medians = processor_medians(variants, modules, database, work, runs)
        for name, (label, _, _) in variants.items():
            m = medians[name]
            table.row(
                f"dag-processor {count:,}: {label}",
                str(runs),
                f"{m['parsing']:.1f} s",
                f"{m['dags'] / m['parsing']:,.1f} DAGs/s",
                "",
                f"{m['dags']:.0f} DAGs from {m['files']:.0f} file(s); CPU {m['cpu']:.1f} s;"
                f" stored source {m['stored_code'] / 1e6:.1f} MB; per-file parse median"
                f" {m['parse_median'] * 1000:.0f} ms, max {m['parse_max']:.2f} s,"
                f" sum {m['parse_total']:.1f} s; all stored {m['done_after']:.1f} s"
                f" from the processor's start, process {m['wall']:.1f} s",
            )
        for top, bottom, label, target in (
            ("a", "b", "one file per DAG / hand-written", "<= 1.05"),
            ("d", "c", "bundled / dag-factory", "<= 0.75"),
            ("d", "a", "bundled / one file per DAG", ""),
        ):
            if top not in medians or bottom not in medians:
                continue
            ratio = medians[top]["parsing"] / medians[bottom]["parsing"]
            cpu = medians[top]["cpu"] / medians[bottom]["cpu"]
            parse = medians[top]["parse_total"] / medians[bottom]["parse_total"]
            table.row(
                f"  ratio {top}/{bottom} ({label}), {count:,} DAGs",
                "",
                f"{ratio:.2f}x",
                "",
                "",
                "files listed to the last DAG stored (the processor's log);"
                f" CPU {cpu:.2f}x; sum of per-file parse times {parse:.2f}x"
                + (f"; target {target}" if target else ""),
            )


def processor_medians(
    variants: dict[str, tuple[str, Path, Path]],
    modules: Path,
    database: Path,
    work: Path,
    runs: int,
) -> dict[str, dict[str, float]]:
    """Each variant's processor runs, in a rotating order (no variant always runs
    first), as medians of each figure."""
    results: dict[str, list[processor.ProcessorRun]] = {name: [] for name in variants}
    names = list(variants)
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            _, py, folder = variants[name]
            results[name].append(
                processor.run_processor(py, folder, modules, database, work)
            )
    return {
        name: {
            field: statistics.median(getattr(r, field) for r in rows)
            for field in processor.ProcessorRun._fields
        }
        for name, rows in results.items()
    }


def bench_task_start(table: Table, work: Path, sizes: list[int], runs: int) -> None:
    """A fresh process loads one task's DAG file as a worker does; see task_start.py."""
    python, astro_py = Path(sys.executable), astro_python()
    modules = trainer_modules(work / "task-start-modules")
    version = package_version(astro_py, "dag-factory")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
        "AIRFLOW_HOME": str(work / "task-start-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(modules),
    }
    task = "processing_tasks.training_model_1"
    curves: dict[str, dict[int, dict]] = {
        "dagfactory": {},
        "bundled": {},
        "dag-factory": {},
    }
    for count in sizes:
        configs = corpus.write_configs(
            work / f"task-start-configs-{count}", count, module="light_trainers"
        )
        generated = work / f"task-start-generated-{count}"
        run_timed(render(configs, generated), work)
        astro = corpus.write_astro(
            work / f"task-start-astro-{count}", count, module="light_trainers"
        )
        dag_id = corpus.variation(count // 2)["dag"]["dag_id"]
        bundled = render_bundled(configs, work / f"task-start-bundled-{count}", work)
        variants = {
            "dagfactory": (python, generated, f"{dag_id}.py"),
            "bundled": (python, bundled, shard_of(bundled, dag_id)),
            "dag-factory": (astro_py, astro, "load_dags.py"),
        }
        starts: dict[str, list[dict]] = {name: [] for name in variants}
        names = list(variants)
        for run in range(runs):
            for name in names[run % len(names) :] + names[: run % len(names)]:
                py, bundle, rel_path = variants[name]
                starts[name].append(start_task(py, bundle, rel_path, dag_id, task, env))
        for name, measured in starts.items():
            curves[name][count] = {
                key: statistics.median(m[key] for m in measured)
                for key in ("seconds", "process")
            }
    for name, label in (
        ("dagfactory", "dagfactory: the DAG's own file"),
        ("bundled", "dagfactory bundled: the DAG's shard"),
        ("dag-factory", f"dag-factory {version}: its loader file"),
    ):
        for count, m in curves[name].items():
            table.row(
                f"task start, {count:,} configs: {label}",
                str(runs),
                f"{m['seconds']:.3f} s",
                "",
                "",
                f"whole process {m['process']:.2f} s (with Python and Airflow imports);"
                " from source" + ("; target <= 0.05 s" if name == "bundled" else ""),
            )
    small, large = sizes[0], sizes[-1]
    growth = {
        name: curve[large]["seconds"] / curve[small]["seconds"]
        for name, curve in curves.items()
    }
    table.row(
        f"  growth {small:,} -> {large:,} configs",
        "",
        f"{growth['dagfactory']:.2f}x",
        "",
        "",
        f"dagfactory (target: flat, ~1.00x); bundled {growth['bundled']:.2f}x;"
        f" dag-factory {growth['dag-factory']:.2f}x",
    )


def start_task(
    python: Path, bundle: Path, rel_path: str, dag_id: str, task: str, env: dict
) -> dict:
    """One fresh process that loads the file of ``dag_id`` and finds ``task``, every
    file compiled from source (no bytecode cached or written), as on a worker's first
    start after a deployment."""
    for cache in bundle.rglob("__pycache__"):
        shutil.rmtree(cache)
    env = env | {"PYTHONDONTWRITEBYTECODE": "1"}
    command = [str(python), str(TASK_START), str(bundle), rel_path, dag_id, task]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    process = time.perf_counter() - started
    lines = [
        line for line in done.stdout.splitlines() if line.startswith(task_start.MARKER)
    ]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"task start of {bundle / rel_path}:\n{done.stderr[-3000:]}")
    return json.loads(lines[0].removeprefix(task_start.MARKER)) | {"process": process}


def trainer_modules(folder: Path) -> Path:
    """A folder with the benchmark's light trainer module, for PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "light_trainers.py").write_text(
        "def train_model(**kwargs):\n    return 1.0\n"
    )
    return folder


def describe_machine() -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    airflow = package_version(Path(sys.executable), "apache-airflow")
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, Airflow {airflow}, {platform.system()} {platform.release()}"
    )
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )


GROUPS = ("render", "noop", "keystroke", "parse", "processor", "taskstart")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"run only these benchmarks, of: {', '.join(GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help="runs per measurement, processes per parse variant (default 5)",
    )
    parser.add_argument(
        "--sizes",
        default="10,100,1000,10000",
        help="config counts: render renders each, taskstart loads at each up to"
        " 1,000 and parse the largest up to 200 (default 10,100,1000,10000;"
        " --sizes 10,30 --processor-sizes 30 makes a short run)",
    )
    parser.add_argument(
        "--processor-sizes",
        default="1000,5000",
        help="DAG counts the processor parses (default 1000,5000; beyond 1,000 only"
        " bundled output and dag-factory)",
    )
    parser.add_argument(
        "--processor-runs",
        type=int,
        default=1,
        help="airflow dag-processor runs per variant (default 1: each takes minutes)",
    )
    args = parser.parse_args()
    unknown = set(args.names) - set(GROUPS)
    if unknown:
        parser.error(
            f"no benchmark {', '.join(sorted(unknown))}: choose from {', '.join(GROUPS)}"
        )
    groups = [g for g in GROUPS if g in args.names] or list(GROUPS)
    sizes = sorted({int(n) for n in args.sizes.split(",")})
    small = [n for n in sizes if n <= 1000] or [min(sizes)]
    describe_machine()
    table = Table()
    global DAGFACTORY
    with tempfile.TemporaryDirectory(prefix="dagfactory-bench-") as scratch:
        work = Path(scratch)
        DAGFACTORY = install_wheel(work)
        if "render" in groups:
            bench_render(
                table, work, args.runs, [1, *sizes] if 1 not in sizes else sizes
            )
        if "noop" in groups:
            bench_noop(table, work, args.runs)
        if "keystroke" in groups:
            bench_keystroke(table, work, args.runs)
        if "parse" in groups:
            bench_parse(table, work, args.runs, min(PARSE_DAGS, sizes[-1]))
        if "processor" in groups:
            processor_sizes = sorted({int(n) for n in args.processor_sizes.split(",")})
            bench_processor(table, work, processor_sizes, args.processor_runs)
        if "taskstart" in groups:
            bench_task_start(table, work, small, args.runs)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
