"""A real (tiny) Django project using the storage through its settings, from the library
and from the command line (which honours ``DJANGO_SETTINGS_MODULE``).

Each check runs in a new process: Django's settings are set up once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "pipelines_events"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``site_settings.py`` (a Django settings module naming the storage) and
    ``site_pipelines.py`` (a pipeline), in ``tmp_path``."""
    (tmp_path / "site_settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "tests"
            INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
            DATABASES = {{
                "default": {{
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": {str(tmp_path / "db.sqlite3")!r},
                }}
            }}
            USE_TZ = True
            PIPELINES_PIPELINES_RESULTS_STORAGE = (
                "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
                {{"path": {str(tmp_path / "django-runs.jsonl")!r}}},
            )
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "site_pipelines.py").write_text(
        textwrap.dedent(
            """
            from typing import Any

            from pipelines_events import Pipeline, Task


            class Greet(Task):
                def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
                    print("hello", self.pipeline_object)


            class Greeting(Pipeline):
                greet = Greet()

                def get_iterator(self) -> Any:
                    return ["world"]
            """
        ),
        encoding="utf-8",
    )
    return tmp_path


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PIPELINES_"))}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([str(project), root])
    env.update(extra)
    return env


def _run(argv: list[str], project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=project, env=_env(project, **env), capture_output=True, text=True, timeout=120
    )


def test_an_application_under_django_writes_to_the_storage_its_settings_name(
    project: Path,
) -> None:
    code = textwrap.dedent(
        """
        import django

        django.setup()

        from pipelines_events.results.helpers import get_pipeline_results_storage
        from site_pipelines import Greeting

        execution = Greeting().start(run_id="from-django")
        print(type(get_pipeline_results_storage()).__name__, execution.get_status().name)
        """
    )
    done = _run([sys.executable, "-c", code], project, DJANGO_SETTINGS_MODULE="site_settings")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hello world", "EventLogPipelineResultsStorage DONE"]
    assert (project / "django-runs.jsonl").exists()


def test_the_command_line_uses_the_storage_of_the_django_settings(project: Path) -> None:
    settings = {"DJANGO_SETTINGS_MODULE": "site_settings"}
    ran = _run(
        [*CLI, "run", "site_pipelines.Greeting", "--run-id", "cli", "-q"], project, **settings
    )
    assert ran.returncode == 0, ran.stderr
    assert (project / "django-runs.jsonl").exists()
    assert not (project / "pipelines-events.jsonl").exists()  # not the default log

    listed = _run([*CLI, "runs", "--format", "json"], project, **settings)
    assert listed.returncode == 0, listed.stderr
    assert [run["run_id"] for run in json.loads(listed.stdout)] == ["cli"]

    cleaned = _run(
        [*CLI, "cleanup", "--all", "--dry-run", "--format", "jsonl"], project, **settings
    )
    assert cleaned.returncode == 0, cleaned.stderr
    assert [json.loads(line)["run_id"] for line in cleaned.stdout.splitlines()] == ["cli"]


def test_without_the_variable_the_command_line_ignores_django(project: Path) -> None:
    listed = _run([*CLI, "runs", "--format", "json"], project)

    # The default log (not the Django project's) is read: it does not exist.
    assert listed.returncode == 2
    assert "pipelines-events.jsonl: no such log file" in listed.stderr
    assert not (project / "django-runs.jsonl").exists()


def test_a_settings_module_that_does_not_import_is_an_error_naming_the_variable(
    project: Path,
) -> None:
    done = _run([*CLI, "runs"], project, DJANGO_SETTINGS_MODULE="no_such_settings")

    assert done.returncode == 2
    assert "DJANGO_SETTINGS_MODULE 'no_such_settings': Django cannot be set up" in done.stderr
    assert "No module named 'no_such_settings'" in done.stderr
    assert not (project / "pipelines-events.jsonl").exists()


MODEL_OBJECTS = textwrap.dedent(
    """
    import django

    django.setup()

    from typing import Any
    from unittest.mock import Mock

    from django.contrib.auth.models import User
    from django.core.management import call_command

    from pipelines_events import Pipeline, Task
    from pipelines_events.conf import override_settings
    from pipelines_events.results import helpers

    call_command("migrate", verbosity=0)
    users = [User.objects.create(username=name) for name in ("ann", "bob")]


    def as_stored(user: Any) -> Any:
        return {"pk": user.pk, "app_label": "auth", "model_name": "user"}


    seen = []


    class ObjectTask(Task):
        def get_iterator(self) -> Any:
            return User.objects.all()

        def get_serializable_task_object(self, obj: Any) -> Any:
            return as_stored(obj)

        def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
            seen.append((type(self.pipeline_object).__name__, self.pipeline_object.username))
            seen.append((type(self.task_object).__name__, self.task_object.username))


    class UserPipeline(Pipeline):
        task = ObjectTask()

        def get_iterator(self) -> Any:
            return User.objects.all()

        def get_serializable_pipeline_object(self, obj: Any) -> Any:
            return as_stored(obj)


    storages = {
        "memory": "pipelines_events.results.memory.MemoryPipelineResultsStorage",
        "eventlog": (
            "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
            {"path": "model-runs.jsonl"},
        ),
    }
    for name, setting in storages.items():
        helpers.reset_storage_object()
        with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=setting):
            runner = Mock()
            runner.start.return_value = True
            execution = UserPipeline().start(run_id=name, runner=runner, reporter=Mock())
            results = execution.get_pipeline_results()
            task_results = results[0].get_task_executions()[0].get_task_results()
            assert [r.get_pipeline_object() for r in results] == users, name
            assert task_results[0].get_pipeline_object() == users[0], name
            assert [r.get_task_object() for r in task_results] == users, name
            seen.clear()
            ObjectTask().start(task_results[1], reporter=Mock())
            assert seen == [("User", "ann"), ("User", "bob")], (name, seen)
            assert runner.start.call_args.args == (execution,)
        print(name, "ok")
    """
)


def test_stored_django_model_objects_come_back_as_model_instances(project: Path) -> None:
    """The original's ``test_pipeline___model__...`` and ``test_*_object_accessible__django_object``
    tests: a pipeline over a queryset, stored as ``{"pk", "app_label", "model_name"}``;
    ``get_pipeline_object()``, ``get_task_object()`` and ``Task.start()`` give the model
    instances back, on both storages."""
    done = _run(
        [sys.executable, "-c", MODEL_OBJECTS], project, DJANGO_SETTINGS_MODULE="site_settings"
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["memory ok", "eventlog ok"]


def test_a_stored_model_reference_stays_as_stored_where_django_is_not_set_up(
    project: Path,
) -> None:
    code = (
        "from pipelines_events.task import get_object\n"
        "print(get_object({'pk': 1, 'app_label': 'auth', 'model_name': 'user'}))\n"
        "print(get_object({}), get_object({'obj': 1}))\n"
    )
    done = _run([sys.executable, "-c", code], project)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "{'pk': 1, 'app_label': 'auth', 'model_name': 'user'}",
        "None {'obj': 1}",
    ]


def test_the_variable_without_django_installed_is_an_error_naming_it(project: Path) -> None:
    shadow = project / "django"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('no django here')\n", encoding="utf-8")

    done = _run([*CLI, "runs"], project, DJANGO_SETTINGS_MODULE="site_settings")

    assert done.returncode == 2
    assert "DJANGO_SETTINGS_MODULE is 'site_settings', but Django is not installed" in done.stderr
    assert not (project / "django-runs.jsonl").exists()
