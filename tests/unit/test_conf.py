"""The settings lookup: configure/overrides, the settings module, Django, defaults."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.conf import (
    DEFAULTS,
    SETTINGS_MODULE_ENV,
    STORAGE_SETTING,
    override_settings,
    settings,
    storage_setting,
    validate_storage_setting,
)
from pipelines_events.errors import ImproperlyConfigured

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STORAGE = (
    "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
    {"path": "pipelines-events.jsonl"},
)

MakeModule = Callable[[str], str]


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(SETTINGS_MODULE_ENV, raising=False)
    settings.reset()
    yield
    settings.reset()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeModule:
    """Write a module with ``source`` under a fresh name importable from tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str) -> str:
        name = f"pe_settings_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return make


# -- defaults and names -----------------------------------------------------------------


def test_default_is_the_event_log_storage_in_the_working_directory() -> None:
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == DEFAULT_STORAGE
    assert settings.lookup(STORAGE_SETTING) == (DEFAULT_STORAGE, "default")
    assert storage_setting() == DEFAULT_STORAGE


def test_every_setting_is_a_pipelines_name() -> None:
    assert STORAGE_SETTING in DEFAULTS
    assert all(name.startswith("PIPELINES_") for name in DEFAULTS)
    assert STORAGE_SETTING in dir(settings)


def test_unknown_setting_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="PIPELINES_NO_SUCH_THING"):
        _ = settings.PIPELINES_NO_SUCH_THING
    with pytest.raises(AttributeError, match="DEBUG"):
        settings.lookup("DEBUG")
    assert not hasattr(settings, "PIPELINES_NO_SUCH_THING")


@pytest.mark.parametrize("where", ["configure", "override"])
def test_unknown_setting_name_is_refused_when_set(where: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"unknown setting 'PIPELINES_TYPO'.*"):
        if where == "configure":
            settings.configure(PIPELINES_TYPO=1)
        else:
            settings.override_settings(PIPELINES_TYPO=1)
    assert settings.lookup(STORAGE_SETTING)[1] == "default"


# -- configure and overrides --------------------------------------------------------------


def test_configure_sets_and_later_calls_replace() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="a.First")
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.First"
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Second")
    assert settings.lookup(STORAGE_SETTING) == ("a.Second", "settings.configure()")
    settings.reset()
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == DEFAULT_STORAGE


def test_overrides_nest_and_restore() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Configured")
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Outer"):
        assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.Outer"
        with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Inner"):
            assert settings.lookup(STORAGE_SETTING) == (
                "a.Inner",
                "settings.override_settings()",
            )
        assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.Outer"
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.Configured"


def test_override_restores_after_an_exception() -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Inside"),
    ):
        raise RuntimeError("boom")
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == DEFAULT_STORAGE


def test_override_as_a_decorator_of_functions() -> None:
    seen: list[Any] = []

    @settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Decorated")
    def run(depth: int) -> str:
        seen.append(settings.PIPELINES_PIPELINES_RESULTS_STORAGE)
        if depth:
            run(depth - 1)  # the same override entered again while active
        return "result"

    @override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Async")
    async def run_async() -> Any:
        await asyncio.sleep(0)
        return settings.PIPELINES_PIPELINES_RESULTS_STORAGE

    assert run(1) == "result"
    assert run.__name__ == "run"
    assert seen == ["a.Decorated", "a.Decorated"]
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == DEFAULT_STORAGE
    assert asyncio.run(run_async()) == "a.Async"
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == DEFAULT_STORAGE


def test_override_refuses_to_decorate_a_class() -> None:
    with pytest.raises(TypeError, match="decorates functions only"):
        settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.B")(object)


def test_configure_inside_an_override_shows_after_it() -> None:
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Override"):
        settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="a.Configured")
        assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.Override"
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.Configured"


def test_generation_changes_with_every_change_of_settings(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = [settings.generation]
    assert settings.generation == seen[-1]  # reading changes nothing
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="a.B")
    seen.append(settings.generation)
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="a.C"):
        seen.append(settings.generation)
    seen.append(settings.generation)
    monkeypatch.setenv(SETTINGS_MODULE_ENV, make_module("X = 1\n"))
    seen.append(settings.generation)
    monkeypatch.delenv(SETTINGS_MODULE_ENV)
    seen.append(settings.generation)
    assert seen == sorted(set(seen)), seen


# -- the settings module -------------------------------------------------------------------


def test_settings_module_beats_default_and_configure_beats_it(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_module("PIPELINES_PIPELINES_RESULTS_STORAGE = 'mod.Storage'\n")
    monkeypatch.setenv(SETTINGS_MODULE_ENV, name)
    assert settings.lookup(STORAGE_SETTING) == (
        "mod.Storage",
        f"settings module {name!r} ({SETTINGS_MODULE_ENV})",
    )
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="conf.Storage")
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "conf.Storage"


def test_settings_module_without_the_setting_falls_to_the_default(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTINGS_MODULE_ENV, make_module("OTHER = 1\n"))
    assert settings.lookup(STORAGE_SETTING) == (DEFAULT_STORAGE, "default")


def test_settings_module_is_imported_lazily_and_once(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    imports = tmp_path / "imports.txt"
    name = make_module(
        f"""
        with open({str(imports)!r}, "a") as out:
            out.write("imported\\n")
        PIPELINES_PIPELINES_RESULTS_STORAGE = "mod.Storage"
        """
    )
    monkeypatch.setenv(SETTINGS_MODULE_ENV, name)
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="conf.Storage")
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "conf.Storage"
    assert not imports.exists()  # configure() answered: the module was not needed yet
    settings.reset()
    for _ in range(3):
        assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "mod.Storage"
    assert imports.read_text() == "imported\n"


def test_another_settings_module_is_picked_up(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        SETTINGS_MODULE_ENV, make_module("PIPELINES_PIPELINES_RESULTS_STORAGE = 'a.A'")
    )
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "a.A"
    monkeypatch.setenv(
        SETTINGS_MODULE_ENV, make_module("PIPELINES_PIPELINES_RESULTS_STORAGE = 'b.B'")
    )
    assert settings.PIPELINES_PIPELINES_RESULTS_STORAGE == "b.B"


def test_settings_module_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_MODULE_ENV, "no_such_settings_module_xyz")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"PIPELINES_SETTINGS_MODULE names the module 'no_such_settings_module_xyz', "
        r"which cannot be imported: ModuleNotFoundError",
    ):
        _ = settings.PIPELINES_PIPELINES_RESULTS_STORAGE


def test_settings_module_that_fails_to_import(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_module("raise RuntimeError('settings are broken')\n")
    monkeypatch.setenv(SETTINGS_MODULE_ENV, name)
    with pytest.raises(ImproperlyConfigured, match=r"PIPELINES_SETTINGS_MODULE") as info:
        storage_setting()
    assert f"{name!r}" in str(info.value)
    assert "RuntimeError: settings are broken" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


# -- the storage setting's shapes ----------------------------------------------------------


def test_storage_setting_forms() -> None:
    assert validate_storage_setting("pkg.mod.Storage") == ("pkg.mod.Storage", {})
    assert validate_storage_setting(("pkg.Storage", {"path": "x"})) == (
        "pkg.Storage",
        {"path": "x"},
    )
    assert validate_storage_setting(["pkg.Storage", {}]) == ("pkg.Storage", {})


def test_storage_setting_returns_a_copy_of_the_kwargs() -> None:
    kwargs = {"path": "x.jsonl"}
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=("pkg.Storage", kwargs))
    _path, got = storage_setting()
    got["path"] = "changed"
    assert kwargs == {"path": "x.jsonl"}
    assert storage_setting() == ("pkg.Storage", {"path": "x.jsonl"})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (42, r"give a dotted class path \(str\) or a 2-tuple .*, not int 42"),
        (None, r"give a dotted class path \(str\) or a 2-tuple .*, not NoneType None"),
        ({"path": "x"}, r"not dict"),
        (("pkg.Storage",), r"give a 2-tuple .*, not a tuple of 1 items"),
        (("pkg.Storage", {}, {}), r"not a tuple of 3 items"),
        ([], r"not a list of 0 items"),
        ((42, {}), r"the first item must be the dotted class path as a str, not int 42"),
        (("pkg.Storage", ["path"]), r"the second item must be a dict of kwargs .*, not list"),
        (("pkg.Storage", None), r"the second item must be a dict .*, not NoneType"),
        (("pkg.Storage", {1: "x"}), r"the kwargs keys must be str, not int 1"),
        ("", r"the dotted class path is empty"),
        ("   ", r"the dotted class path is empty"),
        (("", {}), r"the dotted class path is empty"),
        ("Storage", r"'Storage' is not a dotted class path: give 'module.ClassName'"),
        ("pkg..Storage", r"'pkg..Storage' is not a dotted class path of Python names"),
        ("pkg.Storage ", r"is not a dotted class path of Python names"),
        ("pkg.my-mod.Storage", r"is not a dotted class path of Python names"),
    ],
)
def test_bad_storage_setting(value: Any, problem: str) -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=value)
    pattern = rf"^PIPELINES_PIPELINES_RESULTS_STORAGE \(from settings\.configure\(\)\): .*{problem}"
    with pytest.raises(ImproperlyConfigured, match=pattern):
        storage_setting()


def test_bad_storage_setting_names_the_settings_module(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_module("PIPELINES_PIPELINES_RESULTS_STORAGE = ('pkg.Storage', 'path')\n")
    monkeypatch.setenv(SETTINGS_MODULE_ENV, name)
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"PIPELINES_PIPELINES_RESULTS_STORAGE \(from settings module '{name}' "
        r"\(PIPELINES_SETTINGS_MODULE\)\): the second item must be a dict",
    ):
        storage_setting()


# -- Django (configured once per process: each case runs in a fresh interpreter) ------------


def run_python(code: str, cwd: Path, **env: str) -> Any:
    """Run ``code`` in a new interpreter without settings variables; its printed JSON."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in (SETTINGS_MODULE_ENV, "DJANGO_SETTINGS_MODULE")
    }
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(cwd)])
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_django_settings_come_after_configure_and_the_settings_module(tmp_path: Path) -> None:
    (tmp_path / "my_pipelines_settings.py").write_text(
        "PIPELINES_PIPELINES_RESULTS_STORAGE = 'module.Storage'\n", encoding="utf-8"
    )
    code = """
        import json, os
        import django.conf
        django.conf.settings.configure(
            PIPELINES_PIPELINES_RESULTS_STORAGE=("django.Storage", {"path": "d.jsonl"}),
        )
        from pipelines_events.conf import settings, storage_setting
        steps = [list(settings.lookup("PIPELINES_PIPELINES_RESULTS_STORAGE"))]
        steps.append(list(storage_setting()))
        os.environ["PIPELINES_SETTINGS_MODULE"] = "my_pipelines_settings"
        steps.append(list(settings.lookup("PIPELINES_PIPELINES_RESULTS_STORAGE")))
        settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="configured.Storage")
        steps.append(list(settings.lookup("PIPELINES_PIPELINES_RESULTS_STORAGE")))
        print(json.dumps(steps))
    """
    assert run_python(code, tmp_path) == [
        [["django.Storage", {"path": "d.jsonl"}], "Django settings"],
        ["django.Storage", {"path": "d.jsonl"}],
        [
            "module.Storage",
            "settings module 'my_pipelines_settings' (PIPELINES_SETTINGS_MODULE)",
        ],
        ["configured.Storage", "settings.configure()"],
    ]


def test_django_override_settings_changes_the_value_and_the_generation(tmp_path: Path) -> None:
    code = """
        import json
        import django.conf
        django.conf.settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="django.First")
        from django.test import override_settings
        from pipelines_events.conf import settings
        first = settings.PIPELINES_PIPELINES_RESULTS_STORAGE
        generation = settings.generation
        with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="django.Second"):
            inside = settings.PIPELINES_PIPELINES_RESULTS_STORAGE
            bumped = settings.generation > generation
        print(json.dumps([first, inside, bumped, settings.PIPELINES_PIPELINES_RESULTS_STORAGE]))
    """
    assert run_python(code, tmp_path) == ["django.First", "django.Second", True, "django.First"]


def test_django_becoming_configured_changes_the_generation(tmp_path: Path) -> None:
    code = """
        import json
        from pipelines_events.conf import settings
        before = settings.generation
        import django.conf
        django.conf.settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="django.Late")
        print(json.dumps([settings.generation > before, settings.lookup(
            "PIPELINES_PIPELINES_RESULTS_STORAGE")]))
    """
    assert run_python(code, tmp_path) == [True, ["django.Late", "Django settings"]]


def test_unconfigured_django_is_left_alone(tmp_path: Path) -> None:
    code = """
        import json
        import django.conf
        from pipelines_events.conf import settings
        value = settings.lookup("PIPELINES_PIPELINES_RESULTS_STORAGE")
        print(json.dumps([value[1], django.conf.settings.configured]))
    """
    # A DJANGO_SETTINGS_MODULE that cannot be imported would fail if Django were asked.
    got = run_python(code, tmp_path, DJANGO_SETTINGS_MODULE="no_such_django_settings_xyz")
    assert got == ["default", False]


def test_django_is_not_imported_by_a_lookup(tmp_path: Path) -> None:
    code = """
        import json, sys
        from pipelines_events.conf import settings
        from pipelines_events.results import helpers
        value = settings.lookup("PIPELINES_PIPELINES_RESULTS_STORAGE")
        print(json.dumps([value[1], "django" in sys.modules]))
    """
    assert run_python(code, tmp_path) == ["default", False]
