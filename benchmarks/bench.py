"""dagfactory's benchmarks, measured side by side in one run: ``./dev bench``.

1. render throughput, whole process (`dagfactory render` as a subprocess)
2. no-op re-render of unchanged configs (`render` and `render --check`)
3. DagBag fill time in Airflow: dagfactory's files, hand-written DAGs, astronomer's
   dag-factory (installed only in benchmarks/.venv-dagfactory-astro)
4. trainer modules that take a second to import: the parse must not pay for them

Each measurement runs in a fresh process; the table gives medians of several runs.
This is not part of the test suite and asserts nothing about time.
"""

from __future__ import annotations

import argparse
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

import corpus

ROOT = corpus.ROOT
ASTRO_VENV = ROOT / "benchmarks" / ".venv-dagfactory-astro"
FILL = Path(__file__).resolve().parent / "dagbag_fill.py"
PARSE_DAGS = 200


class Table:
    """Rows printed as they are measured, so a long run shows progress."""

    HEADER = ("benchmark", "runs", "median", "per unit", "peak RSS", "note")

    def __init__(self) -> None:
        self.widths = (44, 4, 9, 19, 9, 0)
        self.row(*self.HEADER)
        print("-" * 110, flush=True)

    def row(self, *cells: str) -> None:
        line = "  ".join(
            cell.ljust(width) if width else cell
            for cell, width in zip(cells, self.widths, strict=True)
        )
        print(line.rstrip(), flush=True)


def run_timed(
    command: list[str], cwd: Path, env: dict | None = None
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, the largest of the process and its workers)."""
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
    return seconds, usage.ru_maxrss


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


def median_of(runs: int, measure: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    results = [measure() for _ in range(runs)]
    return statistics.median(s for s, _ in results), max(m for _, m in results)


def bench_render(table: Table, work: Path, runs: int, sizes: list[int]) -> dict:
    """Whole-process renders into an empty folder, with a fresh cache each time."""
    figures = {}
    cases = [(n, 3, ()) for n in sizes]
    cases += [(sizes[-1], 3, ("--jobs", "1"))]
    cases += [(1, 1000, ())]
    for count, trainers, extra in cases:
        configs = corpus.write_configs(
            work / f"configs-{count}-{trainers}", count, trainers
        )

        def once(configs: Path = configs, extra: tuple = extra) -> tuple[float, int]:
            scratch = Path(tempfile.mkdtemp(dir=work))  # own cwd: no render cache
            try:
                return run_timed(render(configs, scratch / "out", *extra), scratch)
            finally:
                shutil.rmtree(scratch)

        n = runs if count <= 1000 else max(1, runs // 2)
        seconds, rss = median_of(n, once)
        name = (
            f"render {count:,} configs"
            if trainers == 3
            else f"render 1 config with {trainers:,} trainers"
        )
        jobs = " ".join(extra) or "default jobs"
        table.row(
            f"{name} ({jobs})",
            str(n),
            f"{seconds:.2f} s",
            f"{count / seconds:,.0f} configs/s"
            if trainers == 3
            else f"{trainers / seconds:,.0f} trainers/s",
            f"{rss / 1024:.0f} MB",
            "",
        )
        figures[(count, trainers, extra)] = seconds
    big = sizes[-1]
    table.row(
        f"  {big:,} configs: --jobs 1 / default jobs",
        "",
        f"{figures[(big, 3, ('--jobs', '1'))] / figures[(big, 3, ())]:.2f}x",
        "",
        "",
        f"speed-up on {os.cpu_count()} CPUs",
    )
    return figures


def bench_noop(table: Table, work: Path, runs: int) -> None:
    """1,000 unchanged configs rendered again: with the render cache, and without it."""
    configs = corpus.write_configs(work / "noop-configs", 1000)
    home = work / "noop"
    home.mkdir()
    out = home / "out"
    run_timed(render(configs, out), home)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    cases = [
        ("no-op re-render, 1,000 configs", ()),
        ("no-op render --check, 1,000 configs", ("--check",)),
    ]
    for name, extra in cases:
        seconds, rss = median_of(
            runs, lambda extra=extra: run_timed(render(configs, out, *extra), home)
        )
        table.row(
            name,
            str(runs),
            f"{seconds:.2f} s",
            f"{1000 / seconds:,.0f} configs/s",
            f"{rss / 1024:.0f} MB",
            "render cache warm",
        )

    def cold() -> tuple[float, int]:
        shutil.rmtree(home / ".dagfactory", ignore_errors=True)
        return run_timed(render(configs, out, "--check"), home)

    seconds, rss = median_of(runs, cold)
    table.row(
        "no-op render --check, 1,000 configs, no cache",
        str(runs),
        f"{seconds:.2f} s",
        f"{1000 / seconds:,.0f} configs/s",
        f"{rss / 1024:.0f} MB",
        "every config compiled",
    )
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    kept = "yes" if before == after else "NO"
    table.row("  files untouched (same names and mtimes)", "", kept, "", "", "")


def fill(
    python: Path, folder: Path, work: Path, pythonpath: Path | None = None
) -> dict:
    """One DagBag fill in a fresh process with its own AIRFLOW_HOME."""
    home = Path(tempfile.mkdtemp(dir=work, prefix="airflow-home-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [str(python), str(FILL), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"DagBag fill of {folder} failed:\n{result.stderr[-3000:]}")
    figures = json.loads(lines[-1])
    if figures["errors"] or figures["dags"] == 0:
        raise RuntimeError(f"DagBag fill of {folder}: {figures}")
    return figures


def fill_medians(
    variants: dict[str, tuple[Path, Path, Path | None]], work: Path, runs: int
) -> dict[str, tuple[float, dict]]:
    """Median fill seconds per variant, the variants interleaved run by run."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    shapes: dict[str, dict] = {}
    for _ in range(runs):
        for name, (python, folder, pythonpath) in variants.items():
            figures = fill(python, folder, work, pythonpath)
            seconds[name].append(figures["seconds"])
            shapes[name] = {key: figures[key] for key in ("dags", "tasks", "edges")}
    return {
        name: (statistics.median(values), shapes[name])
        for name, values in seconds.items()
    }


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
    medians = fill_medians(variants, work, runs)
    shapes = {name: shape for name, (_, shape) in medians.items()}
    same = (
        "same DAGs, tasks and edges"
        if len({json.dumps(s) for s in shapes.values()}) == 1
        else f"SHAPES DIFFER: {shapes}"
    )
    labels = {
        "a": "parse 200 DAGs: (a) dagfactory-generated",
        "b": "parse 200 DAGs: (b) hand-written Python",
        "c": f"parse 200 DAGs: (c) astronomer dag-factory {package_version(astro_py, 'dag-factory')}",
        "heavy": "parse 200 DAGs: (a) with 1 s-import trainers",
    }
    for name, label in labels.items():
        seconds, _ = medians[name]
        table.row(
            label,
            str(runs),
            f"{seconds:.2f} s",
            f"{seconds / PARSE_DAGS * 1000:.1f} ms/DAG",
            "",
            same if name == "a" else "",
        )
    a, b, c, heavy = (medians[name][0] for name in ("a", "b", "c", "heavy"))
    table.row(
        "  ratio a/b (generated / hand-written)",
        "",
        f"{a / b:.2f}x",
        "",
        "",
        "target <= 1.10",
    )
    table.row(
        "  ratio a/c (generated / dag-factory)",
        "",
        f"{a / c:.2f}x",
        "",
        "",
        "target <= 0.50",
    )
    table.row(
        "  ratio heavy/a (1 s-import trainers)",
        "",
        f"{heavy / a:.2f}x",
        "",
        "",
        "target < 1.05",
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
        "--runs", type=int, default=5, help="runs per measurement (default 5)"
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
