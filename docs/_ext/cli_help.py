"""``.. cli-help::``: the ``--help`` text of the ``pipelines-events`` commands, from the parser.

Without an argument the directive renders the main ``--help`` and then one section per
command, in the parser's order; with a command name it renders that command's help only.
The text comes from :func:`pipelines_events.cli.build_parser`, so the reference cannot
drift from the code.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

WIDTH = 88
"""Columns the help text is wrapped to."""


def _parser() -> argparse.ArgumentParser:
    from pipelines_events.cli import build_parser

    return build_parser()


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser``'s ``--help`` text, wrapped to :data:`WIDTH` columns."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        return parser.format_help().rstrip() + "\n"
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


class CliHelp(SphinxDirective):
    """Render ``pipelines-events [COMMAND] --help``."""

    optional_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"main-only": directives.flag}

    def run(self) -> list[nodes.Node]:
        parser = _parser()
        commands = _commands(parser)
        if self.arguments:
            name = self.arguments[0]
            if name not in commands:
                raise self.error(f"no command {name!r}; the commands are {', '.join(commands)}")
            return [self._literal(help_text(commands[name]))]
        out: list[nodes.Node] = [self._literal(help_text(parser))]
        if "main-only" in self.options:
            return out
        summaries = _summaries(parser)
        for name, sub in commands.items():
            section = nodes.section(ids=[nodes.make_id(f"command-{name}")], names=[name])
            section += nodes.title(text=f"pipelines-events {name}")
            if summaries.get(name):
                section += nodes.paragraph(text=summaries[name])
            section += self._literal(help_text(sub))
            self.state.document.note_implicit_target(section)
            out.append(section)
        return out

    @staticmethod
    def _literal(text: str) -> nodes.literal_block:
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-help", CliHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
