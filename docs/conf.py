"""Sphinx configuration of the pipelines-events documentation.

Build: ``python -m sphinx -W --keep-going -b html docs /tmp/html`` (the ``docs`` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the package itself, for autodoc, installed or not
sys.path.insert(0, str(HERE / "_ext"))

import pipelines_events  # noqa: E402

project = "pipelines-events"
author = "pipelines-events developers"
copyright = "pipelines-events developers"
release = pipelines_events.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "cli_help",
]

html_theme = "furo"
html_title = f"pipelines-events {release}"
html_static_path = ["_static"]
templates_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

default_role = "code"
highlight_language = "none"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}


def _public_bases(app: object, name: str, obj: type, options: object, bases: list[type]) -> None:
    """Show an engine built of private parts (``_Reads``, ``_Writes``...) as its public base."""
    if any(base.__name__.startswith("_") for base in bases):
        public = [b for b in obj.__mro__[1:] if not b.__name__.startswith("_") and b is not object]
        bases[:] = public[:1] or [object]


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-bases", _public_bases)
