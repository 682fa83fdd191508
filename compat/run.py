"""The compatibility run: prove dagfactory's generated DAGs on every supported Airflow version.

``python compat/run.py [--jobs N] [VERSION ...]`` (``./dev compat`` runs it) builds one
dagfactory wheel from the checkout, then for each version (all of versions.txt when none
is named):

- a virtualenv pinned by ``compat/constraints-X.Y.txt`` (cached in ``.venv-compat/X.Y``
  until that file changes), into which the wheel is installed as a user installs it,
  with the ``sklearn`` extra that the scikit-learn example needs;
- a project folder outside the checkout with a copy of ``configs/``, the failing
  example of ``compat/configs/`` and the user code package ``generated_dags/ml_demo``;
- ``dagfactory render`` there, one ``airflow db migrate`` and :mod:`probe` (the DagBag
  fill without deprecation warnings, then every DAG run end to end and checked, the
  scikit-learn example's published model among them);
- ``airflow dags test`` of two examples, as a user runs it, its run then checked by
  :mod:`probe`;
- ``dagfactory check`` and ``dagfactory run xcom_dag``, as a user runs them.

It prints a table of every check for every version, the details of each failure, and
last ``compat: N passed, M failed`` (versions); it exits 1 when any version failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from uv import find_uv_bin
from versions import COMPAT, Version, select

ROOT = COMPAT.parent
CACHE = ROOT / ".venv-compat"
UV = find_uv_bin()
TAIL = 3000  # characters of a failed command's output shown under the table
# Also run by Airflow's own `airflow dags test`: the classic example, whose user code
# (ml_demo) only imports when the generated file puts its own folder on sys.path, as
# 3.0's `dags test` does not. One DAG: each costs 20-30 s a version, and CI's time is
# bounded (every example already runs through dag.test() in the probe).
DAGS_TESTED = ("xcom_dag",)
LOGICAL_DATE = "2024-01-02"


@dataclass
class Outcome:
    """What one version did: each check's verdict and detail, in the order they ran."""

    version: Version
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks.values())


def command(args: list[str], timeout: int = 600, **kwargs: object) -> tuple[bool, str]:
    """Run ``args``; whether it exited 0 in time, and its output (stdout then stderr)."""
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired as expired:
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part or ""
            for part in (expired.stdout, expired.stderr)
        )
        return False, f"{output}\n{' '.join(args)}: still running after {timeout} s"
    return done.returncode == 0, done.stdout + done.stderr


def build_wheel(scratch: Path) -> Path:
    """One wheel of the checkout, built from a copy so that the checkout stays untouched."""
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source)
    shutil.copytree(
        ROOT / "dagfactory",
        source / "dagfactory",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    ok, output = command(
        [
            UV,
            "build",
            "--quiet",
            "--wheel",
            "--out-dir",
            str(scratch / "dist"),
            str(source),
        ]
    )
    if not ok:
        raise SystemExit(f"compat: building the dagfactory wheel failed:\n{output}")
    return next((scratch / "dist").glob("dagfactory-*.whl"))


def virtualenv(version: Version, wheel: Path) -> tuple[bool, str, Path]:
    """The cached virtualenv of ``version`` (rebuilt when its pins change), with the wheel."""
    venv = CACHE / version.series
    python = venv / "bin" / "python"
    pins = version.constraints.read_bytes()
    # Airflow's modules compiled once, at install (uv does not by default, pip does):
    # with PYTHONDONTWRITEBYTECODE set, as on CI's machine, each of the run's Airflow
    # processes would compile every module it imports from source, seconds each.
    compile_bytecode = "--compile-bytecode"
    stamp = hashlib.sha256(
        pins + sys.version.encode() + compile_bytecode.encode()
    ).hexdigest()
    stamp_file = venv / ".stamp"
    install = [UV, "pip", "install", "--quiet", "--python", str(python)]
    if (
        not python.exists()
        or not stamp_file.exists()
        or stamp_file.read_text() != stamp
    ):
        shutil.rmtree(venv, ignore_errors=True)
        ok, output = command(
            [UV, "venv", "--quiet", "--python", sys.executable, str(venv)]
        )
        if ok:
            ok, output = command(
                [*install, compile_bytecode, "-r", str(version.constraints)]
            )
        if not ok:
            return False, output, python
        stamp_file.write_text(stamp)
    ok, output = command(
        [
            *install,
            "--reinstall-package",
            "dagfactory",
            "-c",
            str(version.constraints),
            f"dagfactory[airflow,sklearn] @ {wheel.as_uri()}",
        ]
    )
    return ok, output, python


def project(folder: Path) -> Path:
    """A user's project: the example configs, the failing example and their user code."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    for config in (COMPAT / "configs").glob("*.yaml"):
        shutil.copy2(config, folder / "configs")
    shutil.copytree(
        ROOT / "generated_dags" / "ml_demo",
        folder / "generated_dags" / "ml_demo",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return folder


def child_env(
    venv_bin: Path, home: Path | None = None, dags: Path | None = None
) -> dict[str, str]:
    """The environment of a command in a compat virtualenv (an own Airflow home if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    if home is not None and dags is not None:
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        )
    return env


def prove(version: Version, wheel: Path, scratch: Path, progress: bool) -> Outcome:
    """Every check of one version, stopping at the first that leaves nothing to check."""
    outcome = Outcome(version)
    work = scratch / version.series
    work.mkdir()

    def step(name: str, ok: bool, detail: str, started: float) -> bool:
        outcome.checks[name] = (ok, detail)
        outcome.seconds[name] = time.monotonic() - started
        if progress:
            verdict = "ok" if ok else "FAILED"
            print(
                f"compat {version.series}: {name} {verdict} ({outcome.seconds[name]:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        return ok

    started = time.monotonic()
    ok, output, python = virtualenv(version, wheel)
    if not step("venv", ok, output, started):
        return outcome
    bin_dir = python.parent
    folder = project(work / "project")
    dags = folder / "generated_dags"
    started = time.monotonic()
    ok, output = command(
        [str(bin_dir / "dagfactory"), "render"], cwd=folder, env=child_env(bin_dir)
    )
    if not step("render", ok, output, started):
        return outcome

    home = work / "airflow"
    home.mkdir()
    env = child_env(bin_dir, home, dags)
    # The scikit-learn example's files: this version's own, as versions run side by side.
    env["DAGFACTORY_DEMO_DATA"] = str(work / "digits-data")
    started = time.monotonic()
    ok, output = command([str(python), "-m", "airflow", "db", "migrate"], env=env)
    if not step("db migrate", ok, output, started):
        return outcome
    started = time.monotonic()
    result = work / "probe.json"
    ok, output = command(
        [str(python), str(COMPAT / "probe.py"), str(dags), str(result)],
        timeout=900,
        env=env,
        cwd=work,
    )
    elapsed = time.monotonic() - started
    if result.exists():
        outcome.checks.update(json.loads(result.read_text("utf-8")))
        outcome.seconds["probe"] = elapsed
    if not ok:  # it crashed or hung: what it wrote so far names the DAG it was on
        step("probe", False, output, started)
    elif progress:
        print(
            f"compat {version.series}: dagbag and runs ({elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    for dag_id in DAGS_TESTED:
        started = time.monotonic()
        step(
            f"airflow dags test {dag_id}",
            *dags_test(python, dag_id, env, work),
            started,
        )

    for name, args in (
        ("dagfactory check", ["check"]),
        ("dagfactory run xcom_dag", ["run", "xcom_dag"]),
    ):
        started = time.monotonic()
        ok, output = command(
            [str(bin_dir / "dagfactory"), *args], cwd=folder, env=child_env(bin_dir)
        )
        step(name, ok, output, started)
    return outcome


def dags_test(
    python: Path, dag_id: str, env: dict[str, str], work: Path
) -> tuple[bool, str]:
    """``airflow dags test`` of ``dag_id`` as a user types it, then its run read back.

    Run from ``work``, not the DAGs folder, so that nothing but the generated file puts
    that folder on ``sys.path``; the probe then checks the run it left in the database
    as it checks its own (the trainers' XComs, the winner).
    """
    ok, output = command(
        [str(python), "-m", "airflow", "dags", "test", dag_id, LOGICAL_DATE],
        env=env,
        cwd=work,
    )
    if not ok:
        return False, output
    result = work / f"dags-test-{dag_id}.json"
    dags = env["AIRFLOW__CORE__DAGS_FOLDER"]
    args = [str(COMPAT / "probe.py"), dags, str(result), "--last-run", dag_id]
    ok, probed = command([str(python), *args], env=env, cwd=work)
    if not ok or not result.exists():
        return False, f"{output}\n{probed}"
    verified, problems = json.loads(result.read_text("utf-8"))[dag_id]
    return verified, problems or f"exit 0, {dag_id}'s XComs and winner checked"


def table(outcomes: list[Outcome]) -> str:
    """Checks down, versions across: ok, FAIL or - (not reached); then each version's time."""
    names = list(dict.fromkeys(name for o in outcomes for name in o.checks))
    width = max(len(name) for name in [*names, "seconds"])
    lines = [
        "check".ljust(width) + "".join(f"  {o.version.series:>6}" for o in outcomes)
    ]
    for name in names:
        cells = []
        for o in outcomes:
            ok = o.checks.get(name, (None, ""))[0]
            cells.append({True: "ok", False: "FAIL", None: "-"}[ok])
        lines.append(name.ljust(width) + "".join(f"  {c:>6}" for c in cells))
    total = [f"{sum(o.seconds.values()):.0f}" for o in outcomes]
    lines.append("seconds".ljust(width) + "".join(f"  {t:>6}" for t in total))
    return "\n".join(lines)


def failures(outcomes: list[Outcome]) -> str:
    """The detail of every failed check, its end when long."""
    parts = []
    for o in outcomes:
        for name, (ok, detail) in o.checks.items():
            if not ok:
                text = detail.strip()
                text = text if len(text) <= TAIL else "..." + text[-TAIL:]
                parts.append(f"--- {o.version.series} {name}:\n{text}")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "versions", nargs="*", metavar="VERSION", help="e.g. 2.10 3.4 (default: all)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("COMPAT_JOBS", "2")),
        help="versions at a time (default: 2)",
    )
    args = parser.parse_args()
    versions = select(args.versions)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dagfactory-compat-") as scratch_name:
        scratch = Path(scratch_name)
        wheel = build_wheel(scratch)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(lambda v: prove(v, wheel, scratch, True), versions)
            )
    print(table(outcomes))
    details = failures(outcomes)
    if details:
        print(details)
    passed = sum(o.passed for o in outcomes)
    print(f"compat: {len(versions)} versions in {time.monotonic() - started:.0f} s")
    print(f"compat: {passed} passed, {len(outcomes) - passed} failed")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
