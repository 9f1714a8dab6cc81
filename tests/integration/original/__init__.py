"""The original django-pipelines' tests, ported: each runs on every shipped storage."""
