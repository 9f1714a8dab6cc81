"""Helpers shared by the reliability tests (``tests/test_reliability_*.py``)."""
