"""Batches: the same outputs and errors on one process or several, and the render cache."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import pytest
from test_cli import dagfactory
from test_cli import dagfactory as run_dagfactory

from conftest import VALID
from dagfactory import files
from dagfactory.build import compile_batch
from dagfactory.compile import render as render_module
from dagfactory.compile.render import TemplateCache
from dagfactory.configs import discover
from dagfactory.files import digest
from dagfactory.output import cache as cache_module
from dagfactory.output.cache import CACHE_FILE, RenderCache
from dagfactory.output.plan import Action, plan_render
from dagfactory.output.writer import apply


def configs(folder: Path, count: int, *, broken: bool = False) -> list[Path]:
    """``count`` valid configs; with ``broken``, some of every kind of error among them."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = VALID.replace("dag_id: demo", f"dag_id: demo_{index:03d}")
        if broken and index % 7 == 3:
            text += "extra: 1\n"  # a schema error
        if broken and index % 11 == 5:
            text = "dag: [\n"  # a YAML syntax error
        if broken and index % 13 == 8:
            text = VALID.replace("dag_id: demo", "dag_id: Demo_000")  # a duplicate id
        (folder / f"c{index:03d}.yaml").write_text(text, "utf-8")
    return discover([folder])


def outcome(batch) -> tuple[list, list]:
    return [(c.source, c.dag_id, c.content) for c in batch.rendered], batch.problems


def test_one_and_two_jobs_give_the_same_outputs_in_the_same_order(tmp_path):
    paths = configs(tmp_path / "configs", 30)
    one, two = compile_batch(paths, jobs=1), compile_batch(paths, jobs=2)
    assert outcome(one) == outcome(two)
    assert [c.dag_id for c in two.rendered] == [f"demo_{i:03d}" for i in range(30)]
    assert not two.problems


def test_one_and_two_jobs_report_the_same_errors_in_the_same_order(tmp_path):
    paths = configs(tmp_path / "configs", 40, broken=True)
    one, two = compile_batch(paths, jobs=1), compile_batch(paths, jobs=2)
    assert one.problems == two.problems
    assert not one.rendered and not two.rendered
    kinds = {error.message.split(":")[0].split(" ")[0] for error in two.problems}
    assert {"unknown", "invalid", "the"} <= kinds
    assert [error.file for error in two.problems] == sorted(
        error.file for error in two.problems
    )


@pytest.mark.parametrize("broken", [False, True])
def test_cli_jobs_one_and_two_print_and_write_the_same(tmp_path, broken):
    configs(tmp_path / "configs", 25, broken=broken)
    results = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = dagfactory(
            "render", "configs", "--out", str(out), "--jobs", jobs, cwd=tmp_path
        )
        (tmp_path / CACHE_FILE).unlink(missing_ok=True)  # each run compiles everything
        files = {p.name: p.read_bytes() for p in sorted(out.glob("*.py"))}
        lines = [
            line.replace(f"out{jobs}", "out") for line in result.stdout.splitlines()
        ]
        results[jobs] = (result.returncode, lines[:-1], result.stderr, files)
    assert results["1"] == results["2"]
    code, _, stderr, files = results["2"]
    assert (code, bool(files), "nothing written" in stderr) == (
        (1, False, True) if broken else (0, True, False)
    )


def test_jobs_must_be_a_positive_number(tmp_path):
    result = dagfactory("validate", str(tmp_path), "--jobs", "0")
    assert result.returncode == 2
    assert "expected a whole number of at least 1, got '0'" in result.stderr


def test_cached_configs_are_not_compiled_but_still_checked(tmp_path):
    paths = configs(tmp_path / "configs", 3)
    cache = RenderCache.from_file(tmp_path / "cache.json")
    first = compile_batch(paths, jobs=1, cache=cache)
    cache.save()
    cache = RenderCache.from_file(tmp_path / "cache.json")
    second = compile_batch(paths, jobs=1, cache=cache)
    assert [c.pipeline for c in second.rendered] == [None, None, None]
    assert [(c.dag_id, c.digest) for c in second.rendered] == [
        (c.dag_id, c.digest) for c in first.rendered
    ]
    # A config that now claims a cached config's DAG id is reported as without a cache.
    clash = tmp_path / "configs" / "c999.yaml"
    clash.write_text(VALID.replace("dag_id: demo", "dag_id: DEMO_001"), "utf-8")
    paths = discover([tmp_path / "configs"])
    assert compile_batch(paths, cache=cache).problems == compile_batch(paths).problems


def test_validating_renders_nothing_and_records_nothing_but_reads_the_cache(tmp_path):
    paths = configs(tmp_path / "broken", 14, broken=True)
    assert (
        compile_batch(paths, jobs=1, render=False).problems
        == compile_batch(paths, jobs=1).problems
    )
    paths = configs(tmp_path / "configs", 3)
    cache = RenderCache.from_file(tmp_path / "cache.json")
    checked = compile_batch(paths, jobs=1, cache=cache, render=False)
    assert [(c.dag_id, c.content, c.digest) for c in checked.rendered] == [
        (f"demo_{index:03d}", None, None) for index in range(3)
    ]
    assert cache.added == {}  # an entry vouches for a rendered file's digest
    rendered = compile_batch(paths[:1], jobs=1, cache=cache)
    cache.save()
    cache = RenderCache.from_file(tmp_path / "cache.json")
    checked = compile_batch(paths, jobs=1, cache=cache, render=False)
    assert [c.digest for c in checked.rendered] == [
        rendered.rendered[0].digest,
        None,
        None,
    ]
    assert cache.added == {}


def test_a_cached_config_whose_file_differs_is_compiled_again_and_only_once(tmp_path):
    paths = configs(tmp_path / "configs", 2)
    out = tmp_path / "out"
    cache = RenderCache.from_file(tmp_path / "cache.json")
    fresh = plan_render(
        compile_batch(paths, cache=cache, out_dir=out).rendered, out
    ).changes
    cache.save()
    for planned in fresh:
        planned.path.parent.mkdir(exist_ok=True)
        planned.path.write_text(planned.content, "utf-8")

    def cached():
        cache = RenderCache.from_file(tmp_path / "cache.json")
        return compile_batch(paths, cache=cache, out_dir=out)

    batch = cached()
    assert [unit.content for unit in batch.rendered] == [None, None]  # not compiled
    assert (
        plan_render(batch.rendered, out).changes == []
    )  # both files are as they should be
    fresh[1].path.write_text(fresh[1].content + "# edited\n", "utf-8")
    batch = cached()
    assert [unit.content is None for unit in batch.rendered] == [True, False]
    assert [
        (p.path, p.action, p.content) for p in plan_render(batch.rendered, out).changes
    ] == [(fresh[1].path, Action.UPDATE, fresh[1].content)]


def test_a_broken_cache_file_is_an_empty_cache(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text(VALID, "utf-8")
    (tmp_path / CACHE_FILE).parent.mkdir()
    junk_files = (
        "not json",
        "[1, 2]",
        '{"k": [1]}',
        '{"entries": {}, "files": {"f": 1}}',
    )
    for junk in junk_files:
        (tmp_path / CACHE_FILE).write_text(junk, "utf-8")
        result = dagfactory("render", "configs", "--out", "out", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())["entries"]) == 1
    assert (
        "1 DAG file up to date"
        in dagfactory(
            "render", "--check", "configs", "--out", "out", cwd=tmp_path
        ).stdout
    )


def test_a_cache_file_of_another_shape_is_an_empty_cache(tmp_path):
    """The old positional records, and entries or file records with a key missing, a
    value of the wrong type or a list cut short: each is a cache with nothing in it."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text(VALID, "utf-8")
    assert dagfactory("render", "configs", "--out", "out", cwd=tmp_path).returncode == 0
    output = tmp_path / "out" / "demo.py"
    rendered = output.read_text()
    saved = json.loads((tmp_path / CACHE_FILE).read_text())
    ((key, entry),) = saved["entries"].items()
    name = os.path.join("configs", "demo.yaml")
    stat = (tmp_path / name).stat()
    signature = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    record = {
        "stat": dict(
            zip(("size", "mtime_ns", "ctime_ns", "inode"), signature, strict=True)
        )
    }
    positional = [*list(entry.values())[:4], {}, [], []]

    def shape(entries: dict, files: dict) -> dict:
        return {"entries": entries, "files": files}

    shapes = [
        shape({key: positional}, {name: [*signature, "0" * 64]}),
        shape({}, {name: signature}),  # its stat matches: the old code read [4]
        shape({}, {name: record}),
        shape({}, {name: {**record, "digest": 7}}),
        shape({}, {name: {"stat": signature, "digest": "0" * 64}}),
        shape({key: {k: v for k, v in entry.items() if k != "digest"}}, {}),
        shape({key: {**entry, "dag_id_line": "1"}}, {}),
        shape({key: {**entry, "code_modules": "ml_demo"}}, {}),
        shape(
            {key: {**entry, "warnings": [["demo.yaml", 1, 1, [], "x", "warning"]]}}, {}
        ),
        shape({key: {**entry, "inputs": {"env": ["HOME"]}}}, {}),
        shape({key: entry}, []),
        shape([entry], {}),
    ]
    for broken in shapes:
        (tmp_path / CACHE_FILE).write_text(json.dumps(broken), "utf-8")
        output.unlink()
        result = dagfactory("render", "configs", "--out", "out", cwd=tmp_path)
        assert result.returncode == 0, (broken, result.stderr)
        assert output.read_text() == rendered


def test_the_cache_knows_defaults_files_and_the_environment_values_a_config_read(
    tmp_path, monkeypatch
):
    folder = tmp_path / "configs"
    paths = configs(folder, 1)
    (folder / "defaults.yaml").write_text("dag:\n  default_args: {owner: a}\n")
    cache = RenderCache.from_file(tmp_path / "cache.json")
    first = compile_batch(paths, cache=cache)
    cache.save()
    (folder / "defaults.yaml").write_text("dag:\n  default_args: {owner: b}\n")
    cache = RenderCache.from_file(tmp_path / "cache.json")
    second = compile_batch(paths, cache=cache)
    assert second.rendered[0].pipeline is not None  # compiled again, not from the cache
    assert second.rendered[0].digest != first.rendered[0].digest
    (folder / "c000.yaml").write_text(
        "allow_env: [DF_TEST_GREETING]\n"
        + VALID.replace("echo hello", "!env 'echo ${DF_TEST_GREETING:-hi}'"),
        "utf-8",
    )
    for greeting in ("hello", "bonjour"):
        monkeypatch.setenv("DF_TEST_GREETING", greeting)
        batch = compile_batch(paths, cache=cache)
        cache.save()
        assert f'bash_command="echo {greeting}"' in batch.rendered[0].content
    # The same value again: the cache answers, and its file holds no value read.
    assert compile_batch(paths, cache=cache).rendered[0].content is None
    assert "bonjour" not in (tmp_path / "cache.json").read_text()
    monkeypatch.delenv("DF_TEST_GREETING")
    unset = compile_batch(paths, cache=cache).rendered[0]
    assert unset.content is not None and 'bash_command="echo hi"' in unset.content


def user_folder(tmp_path: Path) -> Path:
    """A user cache folder for a test whose project is ``tmp_path``: beside it, since
    one inside the project is refused."""
    return tmp_path.with_name(f"{tmp_path.name}-user")


def user_cache(tmp_path: Path) -> dict[str, str]:
    """The environment of a dagfactory whose user cache is :func:`user_folder`."""
    return {**os.environ, "XDG_CACHE_HOME": str(user_folder(tmp_path))}


def test_render_keeps_the_compiled_template_and_a_later_render_reads_it(tmp_path):
    configs(tmp_path / "configs", 2)
    env = user_cache(tmp_path)
    kept = user_folder(tmp_path) / "dagfactory" / "templates"

    def dagfactory(*args: str, **options: object):
        return run_dagfactory(*args, env=env, **options)

    check = dagfactory("render", "configs", "--out", "out", "--check", cwd=tmp_path)
    assert check.returncode == 1
    assert not kept.exists()  # --check writes nothing, not even a cache
    assert dagfactory("render", "configs", "--out", "out", cwd=tmp_path).returncode == 0
    (compiled,) = kept.iterdir()
    first = (out := tmp_path / "out" / "demo_000.py").read_text()
    # What Jinja kept is what a later render uses: broken, it is compiled anew.
    compiled.write_bytes(b"not bytecode")
    (tmp_path / CACHE_FILE).unlink()
    out.unlink()
    assert dagfactory("render", "configs", "--out", "out", cwd=tmp_path).returncode == 0
    assert out.read_text() == first
    # A cache that can be neither read nor written (a file where its folder goes)
    # only costs time.
    shutil.rmtree(kept)
    kept.write_text("in the way\n")
    (tmp_path / CACHE_FILE).unlink()
    out.unlink()
    result = dagfactory("render", "configs", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == first


def test_workers_started_by_spawn_keep_the_compiled_template(tmp_path, monkeypatch):
    """The template cache is handed to each worker, not inherited from the caller."""
    import concurrent.futures
    import multiprocessing

    spawning = functools.partial(
        concurrent.futures.ProcessPoolExecutor,
        mp_context=multiprocessing.get_context("spawn"),
    )
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", spawning)
    paths = configs(tmp_path / "configs", 4)
    kept = tmp_path / "compiled"
    batch = compile_batch(paths, jobs=2, template_cache=TemplateCache(kept))
    assert batch.rendered == compile_batch(paths, jobs=1).rendered
    assert [path.name.startswith("__jinja2_") for path in kept.iterdir()] == [True]


class Planted:
    """Whatever Jinja's cache loads, ``marker`` made when it is loaded: a pickled
    checksum and a marshalled code object, for the built-in template."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))

    def plant(self, folder: Path, kind: str) -> Path:
        import pickle

        from jinja2.bccache import bc_magic

        folder.mkdir(parents=True, exist_ok=True)
        cache = TemplateCache(folder).bytecode_cache()
        environment = render_module._environment(None, None)
        source, filename, _ = environment.loader.get_source(environment, "dag.py.j2")
        bucket = cache.get_bucket(environment, "dag.py.j2", filename, source)
        path = Path(cache._get_cache_filename(bucket))
        if kind == "pickle":
            path.write_bytes(bc_magic + pickle.dumps(self))
        else:
            bucket.code = compile(f"open({str(self.marker)!r}, 'w')", "planted", "exec")
            with path.open("wb") as file:
                bucket.write_bytecode(file)
        return path


class Renders:
    """A project of one config, rendered once with its user cache beside it; then
    rendered again from scratch by :meth:`again`, which asserts the same file."""

    def __init__(self, tmp_path: Path) -> None:
        configs(tmp_path / "configs", 1)
        self.project, self.env = tmp_path, user_cache(tmp_path)
        self.output = tmp_path / "out" / "demo_000.py"
        self.again(first=True)
        self.rendered = self.output.read_text()

    def again(self, *, first: bool = False) -> None:
        if not first:
            self.output.unlink()
            (self.project / CACHE_FILE).unlink(missing_ok=True)
        result = run_dagfactory(
            "render", "configs", "--out", "out", cwd=self.project, env=self.env
        )
        assert result.returncode == 0, result.stderr
        if not first:
            assert self.output.read_text() == self.rendered


@pytest.mark.parametrize("kind", ["pickle", "marshal"])
def test_a_compiled_template_planted_in_the_project_is_never_loaded(tmp_path, kind):
    renders = Renders(tmp_path)
    marker = tmp_path / "marker"
    # Where older versions kept it, and any file Jinja's cache could be asked for there.
    planted = Planted(marker).plant(tmp_path / CACHE_FILE.parent / "templates", kind)
    for other in ("__jinja2_builtin.cache", "dag.py.j2.cache"):
        shutil.copy(planted, planted.with_name(other))
    shutil.rmtree(user_folder(tmp_path), ignore_errors=True)
    for _ in range(2):  # the compiled template kept anew, then read
        renders.again()
        assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "marshal"])
def test_a_user_cache_others_can_write_is_not_used(tmp_path, kind):
    renders = Renders(tmp_path)
    marker = tmp_path / "marker"
    kept = user_folder(tmp_path) / "dagfactory" / "templates"
    (planted,) = kept.iterdir()
    planted.unlink()
    Planted(marker).plant(kept, kind)
    for folder in (kept, kept.parent):
        folder.chmod(0o777)  # anyone could have planted it
        renders.again()
        assert not marker.exists()
        folder.chmod(0o700)
    # The folder in order again, the file others may write is still not loaded.
    (planted,) = kept.iterdir()
    planted.chmod(0o666)
    renders.again()
    assert not marker.exists()


def test_the_user_cache_is_refused_when_another_user_owns_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    folder = files.user_cache_folder("templates")
    assert folder == tmp_path / "user" / "dagfactory" / "templates"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    assert oct(folder.parent.stat().st_mode & 0o777) == oct(0o700)
    monkeypatch.setattr(files.os, "getuid", lambda: folder.stat().st_uid + 1)
    assert files.user_cache_folder("templates") is None
    assert TemplateCache.for_user() is None
    monkeypatch.undo()
    # nor is a cache inside the project
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    assert files.user_cache_folder("templates") is None


def test_a_settled_file_is_known_by_its_stat_and_any_change_is_read(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)  # no need to wait 2 s
    config = tmp_path / "demo.yaml"
    config.write_text("a: 1\n")
    cache = RenderCache.from_file(tmp_path / "cache.json")
    first = cache.digest_of(config)
    cache.save()
    cache = RenderCache.from_file(tmp_path / "cache.json")

    def no_reading(*args, **kwargs):
        raise AssertionError("read a file whose stat is unchanged")

    monkeypatch.setattr(cache_module, "open", no_reading, raising=False)
    assert cache.digest_of(config) == first
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    # Same size, and the modification time set back: the change time still differs.
    times = config.stat()
    config.write_text("a: 2\n")
    os.utime(config, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert cache.digest_of(config) == digest(b"a: 2\n") != first


def test_a_file_changed_just_now_is_read_every_time(tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text("a: 1\n")
    cache = RenderCache.from_file(tmp_path / "cache.json")
    assert cache.digest_of(config) == digest(b"a: 1\n")
    # Within the file system clock's tick of a change, its times may not show the next one.
    assert cache.seen == {}


def test_a_no_op_render_reads_no_settled_file(tmp_path, monkeypatch):
    configs(tmp_path / "configs", 3)
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    monkeypatch.chdir(tmp_path)
    paths = discover([Path("configs")])
    for _ in range(2):  # the first render writes the files, the second records them
        cache = RenderCache.from_file()
        batch = compile_batch(paths, jobs=1, cache=cache, out_dir=Path("out"))
        plan = plan_render(batch.rendered, Path("out"))
        apply(plan)
        cache.save()
    read = []

    def reading(name, *args, **kwargs):
        read.append(name)
        return open(name, *args, **kwargs)

    monkeypatch.setattr(cache_module, "open", reading, raising=False)
    cache = RenderCache.from_file()
    batch = compile_batch(paths, jobs=1, cache=cache, out_dir=Path("out"))
    assert [unit.content for unit in batch.rendered] == [None, None, None]
    assert read == []


def test_discover_finds_what_a_recursive_glob_finds_in_path_order(tmp_path):
    """The walk by os.scandir against the rule it replaces, ``Path.rglob``: the same
    configs in the same order, through every kind of entry a configs folder can hold."""
    root = tmp_path / "configs"
    for name in (
        "b.yaml",
        "a.yml",
        "defaults.yaml",
        ".yaml",
        "..yaml",
        ".hidden.yaml",
        "notes.txt",
        "x.yaml.bak",
        "team/z.yaml",
        "team/defaults.yml",
        "team-a/m.yaml",
        "team/deep/er/q.yml",
        "dir.yaml/inner.yaml",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(VALID.replace("dag_id: demo", f"dag_id: d{len(name)}"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.yaml").write_text(VALID)
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)
    (root / "linked.yaml").symlink_to(outside / "o.yaml")
    (root / "broken.yaml").symlink_to(tmp_path / "missing.yaml")
    expected = sorted(
        path
        for path in root.rglob("*")
        if path.suffix in {".yaml", ".yml"}
        and path.stem != "defaults"
        and path.is_file()
    )
    found = [config.path for config in discover([root])]
    assert found == expected
    assert root / "linked.yaml" in found and root / "dir.yaml/inner.yaml" in found
    assert not any("linked-folder" in path.parts for path in found)
