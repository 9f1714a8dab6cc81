"""A small bundled pipeline to try the library with (the CLI's ``demo`` command).

Three cities' weather readings are fetched, cleaned and summarised: ``fetch`` ->
``clean`` -> ``summarise``. ``clean`` runs once per measurement (a task iterator), and
one reading of Lima's rainfall cannot be read, so a run of :class:`DemoPipeline` ends
with DONE, RUNTIME_ERROR and CANCELLED objects. Deterministic: no network, no sleeping.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec

from pipelines_events.pipeline import Pipeline
from pipelines_events.task import Task

__all__ = ["CITIES", "MEASUREMENTS", "CleanTask", "DemoPipeline", "FetchTask", "SummariseTask"]

logger = logging.getLogger(__name__)

MEASUREMENTS = ("temperature", "rainfall")
"""The measurements ``clean`` iterates over."""

CITIES: dict[str, dict[str, list[Any]]] = {
    "oslo": {"temperature": [-3.5, -1.0, 2.5, 4.0], "rainfall": [1.2, 0.0, 3.4, 2.2]},
    "lima": {"temperature": [19.0, 20.5, 21.0, 19.5], "rainfall": [0.0, "n/a", 0.1, 0.0]},
    "cairo": {"temperature": [24.0, 26.5, 28.0, 25.5], "rainfall": [0.0, 0.0, 0.2, 0.0]},
}
"""The readings of each city; Lima's rainfall has one reading that cannot be read."""


def _readings(city: str, measurement: str) -> list[float]:
    values: list[float] = []
    for position, value in enumerate(CITIES[city][measurement]):
        if not isinstance(value, int | float):
            raise ValueError(f"{city} {measurement} reading {position}: {value!r} is not a number")
        values.append(float(value))
    return values


class FetchConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Config of :class:`FetchTask`."""

    source: str = "bundled"


class FetchTask(Task):
    """Checks that the city's readings are there."""

    ConfigType = FetchConfig

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        city = self.pipeline_object
        if city not in CITIES:
            raise LookupError(f"no readings for {city!r}")
        count = sum(len(values) for values in CITIES[city].values())
        logger.info("%s: fetched %d readings of %s", run_id, count, city)


class CleanTask(Task):
    """Checks every reading of one measurement (``task_object``) is a number."""

    def get_iterator(self) -> Any:
        return MEASUREMENTS

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        values = _readings(self.pipeline_object, self.task_object)
        logger.info(
            "%s: %s %s: %d readings", run_id, self.pipeline_object, self.task_object, len(values)
        )


class SummariseConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Config of :class:`SummariseTask`."""

    decimals: int = 1


class SummariseTask(Task):
    """Logs the mean of each measurement of the city."""

    ConfigType = SummariseConfig

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        config: SummariseConfig = self.get_config()
        city = self.pipeline_object
        for measurement in MEASUREMENTS:
            values = _readings(city, measurement)
            mean = round(sum(values) / len(values), config.decimals)
            logger.info("%s: %s mean %s: %s", run_id, city, measurement, mean)


class DemoPipeline(Pipeline):
    """Fetch, clean and summarise the readings of three cities (one fails to clean)."""

    fetch = FetchTask(config={"source": "bundled"})
    clean = CleanTask()
    summarise = SummariseTask(config={"decimals": 1})

    ordering: ClassVar[dict[str, list[str]]] = {"summarise": ["clean"], "clean": ["fetch"]}

    def get_iterator(self) -> Any:
        return list(CITIES)
