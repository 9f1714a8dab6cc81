"""Baseline: the original implementation's design, the four objects as Django ORM models.

Django is configured programmatically (``settings.configure``) unless the process has
configured it already; the models are defined with an explicit ``app_label`` and their
tables created with the schema editor, no migrations. Each baseline instance gets its own
database alias (``benchmarks_<n>``) pointing at ``<directory>/django-orm.sqlite3``.

Fields follow the original ORM storage: ``status``, ``started`` and ``completed`` carry
``db_index=True``, each child has a foreign key to its parent. A status change is field
assignments and ``save()`` without ``update_fields`` (an ``UPDATE`` of every column), in
Django's autocommit mode: one transaction per change. :meth:`DjangoOrmBaseline.build`
creates the objects one ``create()`` at a time inside one ``transaction.atomic``.

Durability: ``PRAGMA synchronous=FULL`` (durable) or ``OFF`` through the backend's
``init_command`` option; the journal is ``WAL``, as a Django user tuning SQLite runs it
(one WAL sync per commit, against four in a stock project's ``DELETE`` journal), unless
``journal_mode`` says otherwise.
"""

from __future__ import annotations

import itertools
import pathlib
from typing import Any, Final

from benchmarks.baselines import (
    KIND_FIELDS,
    KINDS,
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    BuiltRun,
    StatusChange,
    drive_pipeline,
    fields_of,
    plan_run,
)

APP_LABEL: Final = "pipelines_events_benchmarks"
JOURNAL_MODES: Final = frozenset({"WAL", "DELETE", "TRUNCATE", "PERSIST"})

_aliases = itertools.count()
_models: dict[str, Any] | None = None


def _setup() -> dict[str, Any]:
    """Configure Django if needed and define the four models once; models by kind."""
    global _models
    if _models is not None:
        return _models

    import django
    from django.apps import apps
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={},
            INSTALLED_APPS=[],
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
    if not apps.ready:
        django.setup()

    from django.db import models

    class _ResultObject(models.Model):  # type: ignore[misc]  # Django has no stubs here
        id = models.CharField(max_length=36, primary_key=True)
        run_id = models.CharField(max_length=255, db_index=True)
        pipeline_id = models.CharField(max_length=255)
        status = models.CharField(max_length=255, default="PENDING", db_index=True)
        started = models.DateTimeField(blank=True, null=True, default=None, db_index=True)
        completed = models.DateTimeField(blank=True, null=True, default=None, db_index=True)
        message = models.TextField(blank=True, default="")

        class Meta:
            abstract = True
            app_label = APP_LABEL

    class OrmPipelineExecution(_ResultObject):
        runner = models.CharField(max_length=255)
        reporter = models.CharField(max_length=255)
        input_data = models.JSONField(blank=True, null=True)

        class Meta(_ResultObject.Meta):
            db_table = "pipeline_execution"

    class OrmPipelineResult(_ResultObject):
        execution = models.ForeignKey(
            OrmPipelineExecution, related_name="pipeline_results", on_delete=models.CASCADE
        )
        serializable_pipeline_object = models.JSONField(blank=True, null=True)

        class Meta(_ResultObject.Meta):
            db_table = "pipeline_result"

    class OrmTaskExecution(_ResultObject):
        pipeline_result = models.ForeignKey(
            OrmPipelineResult, related_name="task_executions", on_delete=models.CASCADE
        )
        task_id = models.CharField(max_length=255)
        pipeline_task = models.CharField(max_length=255)
        config = models.JSONField(blank=True, null=True)

        class Meta(_ResultObject.Meta):
            db_table = "task_execution"

    class OrmTaskResult(_ResultObject):
        task_execution = models.ForeignKey(
            OrmTaskExecution, related_name="results", on_delete=models.CASCADE
        )
        serializable_task_object = models.JSONField(blank=True, null=True)

        class Meta(_ResultObject.Meta):
            db_table = "task_result"

    _models = {
        PIPELINE_EXECUTION: OrmPipelineExecution,
        PIPELINE_RESULT: OrmPipelineResult,
        TASK_EXECUTION: OrmTaskExecution,
        TASK_RESULT: OrmTaskResult,
    }
    return _models


class DjangoOrmBaseline:
    """The four kinds as Django models on SQLite, saved the way the original saved them."""

    name = "django-orm-sqlite"

    def __init__(
        self, directory: pathlib.Path, durable: bool, *, journal_mode: str = "WAL"
    ) -> None:
        if journal_mode.upper() not in JOURNAL_MODES:
            raise ValueError(f"journal_mode {journal_mode!r} is not one of {sorted(JOURNAL_MODES)}")
        self.models = _setup()
        from django.db import connections

        self.durable = durable
        self.journal_mode = journal_mode.upper()
        self.path = pathlib.Path(directory) / "django-orm.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.alias = f"benchmarks_{next(_aliases)}"
        synchronous = "FULL" if durable else "OFF"
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(self.path),
            "OPTIONS": {
                "init_command": (
                    f"PRAGMA journal_mode={self.journal_mode}; PRAGMA synchronous={synchronous}"
                ),
            },
        }
        connections.configure_settings({"default": database})  # fills in Django's defaults
        connections.settings[self.alias] = database
        self.connection = connections[self.alias]
        self._held: dict[str, Any] = {}
        existing = set(self.connection.introspection.table_names())
        with self.connection.schema_editor() as editor:
            for kind in KINDS:
                model = self.models[kind]
                if model._meta.db_table not in existing:
                    editor.create_model(model)

    def build(
        self, run_id: str, n_pipeline_results: int, tasks: list[str], n_task_results: int
    ) -> BuiltRun:
        """``create()`` every object of one run inside one ``transaction.atomic``."""
        from django.db import transaction

        plan = plan_run(run_id, n_pipeline_results, tasks, n_task_results)
        with transaction.atomic(using=self.alias):
            for kind in KINDS:
                manager = self.models[kind].objects.db_manager(self.alias)
                for row in plan.rows[kind]:
                    self._held[row["id"]] = manager.create(**row)
        return plan.built()

    def _object(self, kind: str, object_id: str) -> Any:
        """The instance built in this process, else the one in the database."""
        held = self._held.get(object_id)
        if held is not None:
            return held
        model = self.models[kind]
        instance = model.objects.using(self.alias).get(pk=object_id)
        self._held[object_id] = instance
        return instance

    def status_change(self, kind: str, object_id: str, status: str) -> None:
        """Assign status, message and started or completed, then ``save()``."""
        instance = self._object(kind, object_id)
        for name, value in StatusChange.make(kind, status).fields().items():
            setattr(instance, name, value)
        instance.save(using=self.alias)

    def set_field(self, kind: str, object_id: str, field: str, value: object) -> None:
        """Assign one field, then ``save()`` (every column is written, as in the original)."""
        if field == "id" or field not in fields_of(kind):
            raise ValueError(f"{kind} has no settable field {field!r}")
        instance = self._object(kind, object_id)
        setattr(instance, field, value)
        instance.save(using=self.alias)

    def run_pipeline(self, run_id: str, n_task_results: int) -> None:
        """See :func:`benchmarks.baselines.drive_pipeline`."""
        drive_pipeline(self, run_id, n_task_results)

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        """One object's columns as stored, read with a fresh query (for checks, not timed)."""
        if kind not in KIND_FIELDS:
            raise ValueError(f"unknown kind {kind!r}")
        rows = list(
            self.models[kind]
            .objects.using(self.alias)
            .filter(pk=object_id)
            .values(*fields_of(kind))
        )
        if not rows:
            raise KeyError(f"no {kind} with id {object_id!r}")
        row: dict[str, Any] = rows[0]
        return row

    def close(self) -> None:
        """Close the connection and forget the database alias."""
        from django.db import connections

        self._held.clear()
        self.connection.close()
        del connections[self.alias]
        del connections.settings[self.alias]
