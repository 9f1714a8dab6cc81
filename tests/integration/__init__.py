"""Tests across modules: the command line, the audit, the storages over each engine, and
real servers (PostgreSQL, redis and Celery workers, the web page in Chromium)."""
