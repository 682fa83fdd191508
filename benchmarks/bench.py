"""dagfactory's benchmarks, measured side by side in one run: ``./dev bench``.

1. render throughput, whole process (`dagfactory render` as a subprocess)
2. no-op re-render of unchanged configs (`render` and `render --check`)
3. DagBag fill time in Airflow: dagfactory's files, hand-written DAGs, astronomer's
   dag-factory (installed only in benchmarks/.venv-dagfactory-astro)
4. trainer modules that take a second to import: the parse must not pay for them

Each render measurement runs in a fresh process; each parse variant runs in fresh
processes that fill the DagBag several times (the first fill of a process pays for the
imports, the later ones are the steady cost of a parse). The table gives medians.
This is not part of the test suite and asserts nothing about time.
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
from dagbag_fill import MARKER

ROOT = corpus.ROOT
ASTRO_VENV = ROOT / "benchmarks" / ".venv-dagfactory-astro"
FILL = Path(__file__).resolve().parent / "dagbag_fill.py"
PARSE_DAGS = 200
# DagBag fills per process: the first pays for importing the operators, the later ones
# are the steady cost of parsing the folder again, as the DAG processor keeps doing.
FILLS = 8


class Table:
    """Rows printed as they are measured, so a long run shows progress."""

    HEADER = ("benchmark", "runs", "median", "per unit", "peak RSS", "note")

    def __init__(self) -> None:
        self.widths = (52, 4, 8, 19, 8, 0)
        self.row(*self.HEADER)
        print("-" * 130, flush=True)

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


def render(configs: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagfactory",
        "render",
        str(configs),
        "--out",
        str(out),
        *extra,
    ]


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
            measured_row(table, name, n, m, count, "configs", "")
        else:
            name = f"render 1 config with {trainers:,} trainers"
            measured_row(table, name, n, m, trainers, "trainers", "")
    if 1000 in sizes:
        disk_reference(table, work, runs, figures[(1000, ())])
        render_in_memory(table, work, runs)
    big = sizes[-1]
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
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for name, extra in (("render", ()), ("render --check", ("--check",))):
        m = median_of(
            runs, lambda extra=extra: run_timed(render(configs, out, *extra), home)
        )
        label = f"no-op {name}, 1,000 configs"
        measured_row(table, label, runs, m, 1000, "configs", "render cache warm")

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


def bench_parse(table: Table, work: Path, runs: int) -> None:
    """200 DAGs three ways, and dagfactory's with trainer modules that are slow to import."""
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
            work / f"parse-configs-{module}", PARSE_DAGS, module=module
        )
        folders[module] = work / f"generated-{module}"
        run_timed(render(configs, folders[module]), work)
    hand = corpus.write_handwritten(
        work / "handwritten", PARSE_DAGS, module="light_trainers"
    )
    astro = corpus.write_astro(work / "astro", PARSE_DAGS, module="light_trainers")
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
                f"parse {PARSE_DAGS}: {label}",
                str(m["fills"]),
                f"{m['seconds']:.3f} s",
                f"{m['seconds'] / PARSE_DAGS * 1000:.2f} ms/DAG",
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
            ("a", "b", "generated / hand-written", "<= 1.10"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help="runs per measurement, processes per parse variant (default 5)",
    )
    parser.add_argument(
        "--only",
        choices=("render", "noop", "parse"),
        action="append",
        help="run only these groups",
    )
    parser.add_argument(
        "--sizes", default="1,100,1000,10000", help="config counts for the render group"
    )
    args = parser.parse_args()
    groups = args.only or ["render", "noop", "parse"]
    describe_machine()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="dagfactory-bench-") as scratch:
        work = Path(scratch)
        if "render" in groups:
            bench_render(
                table, work, args.runs, [int(n) for n in args.sizes.split(",")]
            )
        if "noop" in groups:
            bench_noop(table, work, args.runs)
        if "parse" in groups:
            bench_parse(table, work, args.runs)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
