"""Tests under stress: crashes, concurrent writers and threads, hostile inputs and files,
failing writes; and their helpers (common.py, pipelines.py, workers.py, crash_harness.py)."""
