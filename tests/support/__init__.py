"""Helpers used by several test folders (no tests here)."""
