"""The history of a run or of one object: every change, in log order, with old and new values."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pipelines_events.audit._core import (
    AuditChange,
    ChangeFold,
    LogPath,
    check_kind,
    check_status,
    check_time,
    iter_batches,
    on_field,
)
from pipelines_events.errors import InvalidValueError, ObjectNotFoundError
from pipelines_events.events import AnyEvent, ObjectCreated
from pipelines_events.status import PipelineTaskStatus

MIN_PREFIX: Final = 6
"""The shortest object id prefix :func:`history` accepts in place of a whole id."""


def history(
    log: LogPath,
    run_or_object_id: str,
    *,
    kind: str | None = None,
    field: str | None = None,
    status: PipelineTaskStatus | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditChange]:
    """Every change of run ``run_or_object_id``, or of the object with that id, in log order.

    A run id is looked for first, then an object id, then a unique prefix of an object id
    (at least :data:`MIN_PREFIX` characters). Filters: ``kind`` of object; ``field``
    (creations count as setting each initial field); ``status`` (the changes that set that
    status); ``since`` and ``until`` (aware datetimes, both included). Raises
    :class:`ObjectNotFoundError` when no run or object has that id.
    """
    if not isinstance(run_or_object_id, str) or not run_or_object_id:
        raise InvalidValueError(f"give a run id or an object id, not {run_or_object_id!r}")
    kind = check_kind(kind)
    wanted_status = check_status(status)
    since = check_time("since", since)
    until = check_time("until", until)
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidValueError(f"field: give a field name, not {field!r}")
    changes = _changes_of(log, run_or_object_id)
    return select(changes, kind=kind, field=field, status=wanted_status, since=since, until=until)


def select(
    changes: list[AuditChange],
    *,
    kind: str | None = None,
    field: str | None = None,
    status: PipelineTaskStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditChange]:
    """The changes that pass the filters of :func:`history` (already checked)."""
    if status is not None:
        if field is not None and field != "status":
            return []
        field = "status"
    out: list[AuditChange] = []
    for change in changes:
        if kind is not None and change.kind != kind:
            continue
        if since is not None and change.time < since:
            continue
        if until is not None and change.time > until:
            continue
        if field is not None:
            projected = on_field(change, field)
            if projected is None:
                continue
            if status is not None and projected.new is not status:
                continue
            change = projected
        out.append(change)
    return out


def _changes_of(log: LogPath, target: str) -> list[AuditChange]:
    fold = ChangeFold()
    run_changes: list[AuditChange] = []
    object_batches: list[list[AnyEvent]] = []
    nearby: list[ObjectCreated] = []
    matched: dict[str, str] = {}
    prefix = len(target) >= MIN_PREFIX
    for batch, _ in iter_batches(log):
        mine: list[AnyEvent] = []
        objects: list[AnyEvent] = []
        for event in batch:
            if event.run_id == target:
                mine.append(event)
            elif event.id == target or (prefix and event.id.startswith(target)):
                objects.append(event)
        if mine:
            run_changes.extend(fold.batch(mine))
        elif objects and not run_changes:
            object_batches.append(objects)
            runs = set()
            for event in objects:
                matched.setdefault(event.id, event.run_id)
                runs.add(event.run_id)
            # A run's objects are created together, parents first: the ancestors of a
            # created object are almost always in its batch.
            nearby.extend(e for e in batch if type(e) is ObjectCreated and e.run_id in runs)
    if run_changes:
        return run_changes
    if not matched:
        raise ObjectNotFoundError(f"{log}: no run and no object has the id {target!r}")
    if target in matched:
        object_id = target
    elif len(matched) == 1:
        (object_id,) = matched
    else:
        some = ", ".join(sorted(matched)[:5])
        raise InvalidValueError(
            f"{log}: {target!r} is the beginning of {len(matched)} object ids ({some}"
            f"{', ...' if len(matched) > 5 else ''}); give more of the id"
        )
    return _object_changes(log, object_id, matched[object_id], object_batches, nearby)


def _object_changes(
    log: LogPath,
    object_id: str,
    run_id: str,
    object_batches: list[list[AnyEvent]],
    nearby: list[ObjectCreated],
) -> list[AuditChange]:
    """The changes of one object, with the context its ancestors give it."""
    fold = ChangeFold()
    own = [[e for e in batch if e.id == object_id] for batch in object_batches]
    created = next(
        (e for batch in own for e in batch if isinstance(e, ObjectCreated)),
        None,
    )
    if created is not None and not _ancestors_known(created, nearby, run_id):
        for batch, _ in iter_batches(log):
            for event in batch:
                if event.seq >= created.seq:
                    break
                if type(event) is ObjectCreated and event.run_id == run_id:
                    fold.learn(event)
            else:
                continue
            break
    elif created is not None:
        for event in nearby:
            if event.run_id == run_id and event.seq < created.seq:
                fold.learn(event)
    changes: list[AuditChange] = []
    for batch in own:
        if batch:
            changes.extend(fold.batch(batch))
    return changes


def _ancestors_known(created: ObjectCreated, nearby: list[ObjectCreated], run_id: str) -> bool:
    """Whether every ancestor of ``created`` is among the ``nearby`` creations."""
    parents = {e.id: e.parent_id for e in nearby if e.run_id == run_id and e.seq < created.seq}
    parent = created.parent_id
    while parent is not None:
        if parent not in parents:
            return False
        parent = parents[parent]
    return True
