"""PipelineTaskStatus: the advance rule and the status groups, as the original defines them."""

from __future__ import annotations

import itertools

import pytest

from pipelines_events.status import PipelineTaskStatus as S

ALL = list(S)
FINAL = {S.DONE, S.CONFIG_ERROR, S.VALIDATION_ERROR, S.RUNTIME_ERROR, S.CANCELLED}
ERRORS = {S.CONFIG_ERROR, S.VALIDATION_ERROR, S.RUNTIME_ERROR}
FAILED = ERRORS | {S.CANCELLED}


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


@pytest.mark.parametrize(
    ("current", "new"),
    list(itertools.product(ALL, ALL)),
    ids=lambda s: s.name,
)
def test_has_advanced_every_pair(current: S, new: S) -> None:
    """``current.has_advanced(new)``: is moving from ``current`` to ``new`` an advance?"""
    expected = current not in FINAL and _stage(new) > _stage(current)
    assert current.has_advanced(new) is expected


def test_the_forward_path_advances_step_by_step() -> None:
    assert S.PENDING.has_advanced(S.RUNNING)
    assert S.RUNNING.has_advanced(S.DONE)
    for final in FINAL:
        assert S.RUNNING.has_advanced(final)
        assert S.PENDING.has_advanced(final)  # e.g. CANCELLED before it ever ran


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_nothing_advances_to_itself(status: S) -> None:
    assert not status.has_advanced(status)


@pytest.mark.parametrize("final", [s for s in S if s in FINAL], ids=lambda s: s.name)
def test_nothing_leaves_a_final_status(final: S) -> None:
    assert [s for s in S if final.has_advanced(s)] == []


def test_nothing_goes_back() -> None:
    assert not S.RUNNING.has_advanced(S.PENDING)
    assert not S.DONE.has_advanced(S.RUNNING)
    assert not S.CANCELLED.has_advanced(S.PENDING)


def test_status_groups() -> None:
    assert S.final_statuses() == FINAL
    assert S.failed_statuses() == FAILED
    assert S.error_statuses() == ERRORS
    assert S.success_statuses() == {S.DONE}
    assert S.non_final_statuses() == {S.PENDING, S.RUNNING}
    assert isinstance(S.final_statuses(), frozenset)
    assert S.failed_statuses() | S.success_statuses() == S.final_statuses()
    assert not S.failed_statuses() & S.success_statuses()
    assert S.non_final_statuses() | S.final_statuses() == set(S)
    assert not S.non_final_statuses() & S.final_statuses()
    assert S.CANCELLED in S.failed_statuses()
    assert S.CANCELLED not in S.error_statuses()


def test_choices_pair_names_and_values_in_order() -> None:
    assert S.choices() == tuple((s.name, s.value) for s in S)
    assert S.choices()[0] == ("PENDING", "PENDING")
    assert len(S.choices()) == 7


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_is_final(status: S) -> None:
    assert status.is_final is (status in FINAL)
