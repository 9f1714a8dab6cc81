"""The ``pipelines-events`` command line: run pipelines, show runs, audit and verify logs."""

from pipelines_events.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
