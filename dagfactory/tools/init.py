"""``dagfactory init``: a starter project that validates, renders and runs as it is.

It follows the one project layout dagfactory documents: configs in ``configs/``, and
the code they call in a package inside the dags folder (``generated_dags/``), beside
the DAG files dagfactory writes, because that folder is what Airflow puts on
``sys.path`` in every deployment (DAG processor and workers alike).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from dagfactory.compile import compile_text
from dagfactory.compile.schema import SCHEMA_FILE
from dagfactory.configs import display_name
from dagfactory.problems import UsageError
from dagfactory.project import PYPROJECT, add_table

# Beside the configs of a project outside a dagfactory checkout, so that the
# yaml-language-server line works on every teammate's machine.
SCHEMA_COPY = "dagfactory.schema.json"
_TEMPLATES = resources.files("dagfactory").joinpath("templates")


def code_package(dag_id: str) -> str:
    """The name of the package the starter's trainers live in: ``<dag_id>_tasks``."""
    name = re.sub(r"\W", "_", dag_id) + "_tasks"
    return name if name.isidentifier() else f"_{name}"


def schema_reference(config: Path) -> str:
    """How the config's ``yaml-language-server`` line names the schema.

    The schema in this checkout when dagfactory runs from one (its own examples), else
    the copy ``init`` writes beside the configs.
    """
    schema = SCHEMA_FILE
    if schema.is_relative_to(Path.cwd().resolve()):
        return Path(os.path.relpath(schema, config.parent.resolve())).as_posix()
    return SCHEMA_COPY


def starter_files(dag_id: str, config: Path, out_dir: Path) -> dict[Path, str]:
    """Every file of the starter project and its text; a UsageError for a bad DAG id."""
    package = code_package(dag_id)
    reference = schema_reference(config)
    fields = {
        "dag_id": dag_id,
        "schema": reference,
        "package": package,
        "out": out_dir.as_posix(),
    }
    text = _TEMPLATES.joinpath("starter.yaml").read_text("utf-8").format(**fields)
    compilation = compile_text(text, str(config))  # it must render, not only validate
    if compilation.compiled is None:
        problems = "; ".join(problem.message for problem in compilation.problems)
        raise UsageError(f"{dag_id!r} cannot be a DAG id: {problems}")
    models = _TEMPLATES.joinpath("starter_models.py.txt").read_text("utf-8")
    files = {
        config: text,
        out_dir
        / package
        / "__init__.py": f'"""The code the {dag_id} pipeline calls."""\n',
        out_dir / package / "models.py": models.format(**fields),
    }
    if reference == SCHEMA_COPY:
        files[config.parent / SCHEMA_COPY] = SCHEMA_FILE.read_text("utf-8")
    return files


def write_starter(dag_id: str, config: Path, out_dir: Path) -> list[Path]:
    """Write the starter project; nothing if its config or code package exists already.

    A schema copy already beside the configs is kept. Returns the files written.
    """
    files = starter_files(dag_id, config, out_dir)
    package = out_dir / code_package(dag_id)
    for path in (config, package):
        if path.exists():
            raise UsageError(f"{path} already exists; not overwriting it")
    written = []
    for path, text in files.items():
        if path.name == SCHEMA_COPY and path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as stream:
                stream.write(text)
        except FileExistsError:  # made since we looked
            raise UsageError(f"{path} already exists; not overwriting it") from None
        written.append(path)
    return written


def write_settings(config: Path, out_dir: Path) -> str | None:
    """Give the new project's pyproject.toml its ``[tool.dagfactory]`` table (configs
    and out); what was done, or None when it has one already.

    The project is the working directory when the config is in it, else the folder
    holding the config's folder; its settings are relative to it.
    """
    cwd = Path.cwd()
    folder = config.parent.absolute()
    root = cwd if folder.is_relative_to(cwd) else folder.parent
    settings = {"configs": _relative(folder, root), "out": _relative(out_dir, root)}
    pyproject = root / PYPROJECT
    existed = pyproject.exists()
    if add_table(root, settings) is None:
        return None
    shown = display_name(pyproject)
    return f"added [tool.dagfactory] to {shown}" if existed else f"wrote {shown}"


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (else absolute), with forward slashes."""
    path = path.absolute()
    return (path.relative_to(root) if path.is_relative_to(root) else path).as_posix()
