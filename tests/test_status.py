"""PipelineTaskStatus: the advance rule and the status groups."""

from __future__ import annotations

import itertools

import pytest

from pipelines_events.status import PipelineTaskStatus as S

ALL = list(S)
FINAL = {S.DONE, S.CONFIG_ERROR, S.VALIDATION_ERROR, S.RUNTIME_ERROR, S.CANCELLED}
FAILED = {S.CONFIG_ERROR, S.VALIDATION_ERROR, S.RUNTIME_ERROR}


def _stage(status: S) -> int:
    if status is S.PENDING:
        return 0
    if status is S.RUNNING:
        return 1
    return 2


def test_members() -> None:
    assert [s.name for s in S] == [
        "PENDING", "RUNNING", "DONE", "CONFIG_ERROR", "VALIDATION_ERROR", "RUNTIME_ERROR",
        "CANCELLED",
    ]  # fmt: skip
    assert all(s.value == s.name for s in S)


@pytest.mark.parametrize("new", ALL, ids=lambda s: s.name)
def test_anything_advances_from_none(new: S) -> None:
    assert new.has_advanced(None) is True


@pytest.mark.parametrize(
    ("previous", "new"),
    list(itertools.product(ALL, ALL)),
    ids=lambda s: s.name,
)
def test_has_advanced_every_pair(previous: S, new: S) -> None:
    expected = previous not in FINAL and _stage(new) > _stage(previous)
    assert new.has_advanced(previous) is expected


def test_the_forward_path_advances_step_by_step() -> None:
    assert S.RUNNING.has_advanced(S.PENDING)
    assert S.DONE.has_advanced(S.RUNNING)
    for final in FINAL:
        assert final.has_advanced(S.RUNNING)
        assert final.has_advanced(S.PENDING)  # e.g. CANCELLED before it ever ran


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_nothing_advances_to_itself(status: S) -> None:
    assert not status.has_advanced(status)


@pytest.mark.parametrize("final", [s for s in S if s in FINAL], ids=lambda s: s.name)
def test_nothing_leaves_a_final_status(final: S) -> None:
    assert [s for s in S if s.has_advanced(final)] == []


def test_nothing_goes_back() -> None:
    assert not S.PENDING.has_advanced(S.RUNNING)
    assert not S.RUNNING.has_advanced(S.DONE)
    assert not S.PENDING.has_advanced(S.CANCELLED)


def test_status_groups() -> None:
    assert S.final_statuses() == FINAL
    assert S.failed_statuses() == FAILED
    assert S.success_statuses() == {S.DONE}
    assert isinstance(S.final_statuses(), frozenset)
    assert S.failed_statuses() <= S.final_statuses()
    assert S.success_statuses() <= S.final_statuses()
    assert not S.failed_statuses() & S.success_statuses()
    assert S.CANCELLED not in S.failed_statuses() | S.success_statuses()


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_is_final(status: S) -> None:
    assert status.is_final is (status in FINAL)
