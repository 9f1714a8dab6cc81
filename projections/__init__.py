"""Pure folds from events to state: results, digest and history. No I/O, no settings.

A projection takes events in log order with :meth:`apply` and answers queries; its
state can be written with :meth:`snapshot` and read back with :meth:`restore`.
"""

from projections.digest import DigestProjection, PipelineDigest, PipelineDigestItem
from projections.history import Change, HistoryProjection
from projections.results import ResultRecord, ResultsProjection

__all__ = [
    "Change",
    "DigestProjection",
    "HistoryProjection",
    "PipelineDigest",
    "PipelineDigestItem",
    "ResultRecord",
    "ResultsProjection",
]
