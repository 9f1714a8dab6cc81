"""Draw ``architecture.png``: the layers, and how an event travels from ``set_`` to ``get_``.

Run from anywhere with matplotlib installed (the ``bench`` extra has it)::

    python docs/_static/make_architecture.py

and commit the PNG it writes beside this script.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).with_name("architecture.png")

LAYERS = [
    ("7", "pipelines_events.testing", "conformance suite for any storage"),
    ("6", "cli/, audit/", "commands; history, verify, export, replay, follow"),
    ("5", "Pipeline, Task, registry, reporters, runners/", "create objects, report status"),
    ("4", "results/", "interface, event-log and memory storages, helpers"),
    ("3", "log/", "JsonlEventLog: append batches, read from a position"),
    ("2", "projections/", "pure folds: results, digest, history"),
    ("1", "status.py, events.py", "statuses, event Structs, encoding, hash chain"),
]

STEPS = [
    ("task_result.set_status(DONE)", "your code or a runner (layer 5)"),
    ("EventLogPipelineResultsStorage", "checks the value, drafts a FieldSet event (layer 4)"),
    ("JsonlEventLog.append", "flock; catch up; seq, ts, hash; one os.write (layer 3)"),
    ("pipelines-events.jsonl", "one JSON line per event, O_APPEND"),
    ("ResultsProjection, DigestProjection", "fold the events append returned (layer 2)"),
    ("save() -> JsonlEventLog.commit", "fdatasync when durability='fsync' (the default)"),
    ("task_result.get_status()", "fold what others appended (new bytes only), answer"),
]

BLUE = "#dbe8f6"
GREEN = "#dff0d8"
GREY = "#f2f2f2"
EDGE = "#4a4a4a"


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, color: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.008,rounding_size=0.012",
            facecolor=color,
            edgecolor=EDGE,
            linewidth=1.0,
        )
    )


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=EDGE, linewidth=1.1)
    )


def draw() -> None:
    fig, ax = plt.subplots(figsize=(12, 6.4), dpi=110)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")

    ax.text(0.02, 0.965, "Layers (imports point down only)", fontsize=13, weight="bold")
    top, height, gap = 0.89, 0.095, 0.032
    for index, (number, name, what) in enumerate(LAYERS):
        y = top - index * (height + gap)
        _box(ax, 0.02, y - height + 0.03, 0.44, height - 0.01, GREY if number == "7" else BLUE)
        ax.text(0.035, y - 0.005, f"{number}  {name}", fontsize=10.5, weight="bold", va="center")
        ax.text(0.06, y - 0.04, what, fontsize=9.5, va="center", color="#333333")

    ax.text(0.53, 0.965, "An event from set_ to get_", fontsize=13, weight="bold")
    for index, (name, what) in enumerate(STEPS):
        y = top - index * (height + gap)
        color = GREEN if name.endswith(".jsonl") else BLUE
        _box(ax, 0.53, y - height + 0.03, 0.45, height - 0.01, color)
        ax.text(0.545, y - 0.005, f"{index + 1}. {name}", fontsize=10.5, weight="bold", va="center")
        ax.text(0.57, y - 0.04, what, fontsize=9.5, va="center", color="#333333")
        if index:
            _arrow(ax, (0.755, y + gap + 0.029), (0.755, y + 0.031))
    fig.savefig(OUT, bbox_inches="tight", facecolor="white")
    plt.close(fig)


if __name__ == "__main__":
    draw()
    print(OUT)
