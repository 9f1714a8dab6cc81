"""The architecture's one rule: imports point down the layers, never up, as "The layers"
in ``docs/explanation/architecture.rst`` says (its ``layer-modules`` block is LAYERS)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS: list[tuple[str, ...]] = [
    (
        "pipelines_events.status",
        "pipelines_events.events",
        "pipelines_events.errors",
        "pipelines_events.dotted",
    ),
    ("projections",),
    ("pipelines_events.log",),
    ("pipelines_events.conf", "pipelines_events.results"),
    (
        "pipelines_events.pipeline",
        "pipelines_events.task",
        "pipelines_events.registry",
        "pipelines_events.reporters",
        "pipelines_events.runners",
        "pipelines_events.demo",
    ),
    (
        "pipelines_events.audit",
        "pipelines_events.cli",
        "pipelines_events.web",
        "pipelines_events.__main__",
    ),
    ("pipelines_events.testing",),
]


def _layer(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


SOURCES = sorted(
    path
    for package in ("pipelines_events", "projections")
    for path in (ROOT / package).rglob("*.py")
    if _module_name(path) != "pipelines_events"  # the package's lazy re-exports
)


def test_every_module_has_a_layer() -> None:
    assert SOURCES
    assert [str(p) for p in SOURCES if _layer(_module_name(p)) is None] == []


def _page_layers(page: str) -> list[tuple[str, ...]]:
    """The layers of the page's ``layer-modules`` block: numbered lines, continued by
    indented unnumbered ones."""
    lines = iter(page.splitlines())
    for line in lines:
        if line.strip() == ":name: layer-modules":
            break
    else:
        raise AssertionError("the architecture page has no layer-modules block")
    layers: list[list[str]] = []
    for line in lines:
        if line and not line.startswith(" "):
            break  # the block ends at the first line that is not indented
        first, *rest = line.split() or [""]
        if first.isdigit():
            assert int(first) == len(layers) + 1, f"layer {first} out of order: {line!r}"
            layers.append(rest)
        elif first:
            assert layers, f"a continuation line before the first layer: {line!r}"
            layers[-1].extend([first, *rest])
    return [tuple(layer) for layer in layers]


def test_the_architecture_page_lists_these_layers() -> None:
    page = (ROOT / "docs" / "explanation" / "architecture.rst").read_text(encoding="utf-8")
    assert _page_layers(page) == LAYERS


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_imports_point_down(path: Path) -> None:
    own = _layer(_module_name(path))
    assert own is not None
    upward = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        if (layer := _layer(module)) is not None and layer > own
    ]
    assert upward == [], f"{_module_name(path)} imports a higher layer"


# The file engine's modules: only the log layer (and its factory) may import them, so that
# nothing above the log knows which engine it has. Tests and benchmarks may.
FILE_ENGINE = (
    "pipelines_events.log.jsonl",
    "pipelines_events.log.jsonlbase",
    "pipelines_events.log.jsonlfile",
    "pipelines_events.log.jsonlopen",
    "pipelines_events.log.jsonlreads",
    "pipelines_events.log.jsonlscan",
    "pipelines_events.log.jsonlwrites",
    "pipelines_events.log.filesnapshots",
)
FILE_ENGINE_NAMES = frozenset(
    {"JsonlEventLog", "read_events", "scan", "TornWriteRepaired", "LogPermissionsWarning"}
)


def _file_engine_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        if any(module == name or module.startswith(name + ".") for name in FILE_ENGINE)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pipelines_events.log":
            found.extend(
                f"line {node.lineno}: pipelines_events.log.{alias.name}"
                for alias in node.names
                if alias.name in FILE_ENGINE_NAMES
            )
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_only_the_log_layer_imports_the_file_engine(path: Path) -> None:
    name = _module_name(path)
    if name == "pipelines_events.log" or name.startswith("pipelines_events.log."):
        return  # the log layer itself, the factory (log/open.py) included
    assert _file_engine_imports(path) == [], f"{name} imports the file engine"


def test_the_file_engine_check_sees_an_import() -> None:
    """The check above finds both ways of importing the engine."""
    sample = ROOT / "tests" / "integration" / "test_log_conformance.py"
    assert any("pipelines_events.log.jsonl" in found for found in _file_engine_imports(sample))


# The storage (results/) sees the log only through its interface, the shared chain and the
# factory: never an engine's module, not even the memory engine or the file snapshots.
STORAGE_MAY_IMPORT_FROM_THE_LOG = (
    "pipelines_events.log.base",
    "pipelines_events.log.chain",
    "pipelines_events.log.open",
)
STORAGE_SOURCES = [p for p in SOURCES if _module_name(p).startswith("pipelines_events.results")]


def _engine_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        if module.startswith("pipelines_events.log.")
        and not any(
            module == allowed or module.startswith(allowed + ".")
            for allowed in STORAGE_MAY_IMPORT_FROM_THE_LOG
        )
    ]
    log_modules = {p.stem for p in (ROOT / "pipelines_events" / "log").iterdir() if p.suffix}
    for node in ast.walk(tree):  # `from pipelines_events.log import jsonl` names a module too
        if isinstance(node, ast.ImportFrom) and node.module == "pipelines_events.log":
            found.extend(
                f"line {node.lineno}: pipelines_events.log.{alias.name}"
                for alias in node.names
                if alias.name in log_modules
                and f"pipelines_events.log.{alias.name}" not in STORAGE_MAY_IMPORT_FROM_THE_LOG
            )
    return found


@pytest.mark.parametrize("path", STORAGE_SOURCES, ids=lambda p: _module_name(p))
def test_the_storage_imports_no_engine_module(path: Path) -> None:
    assert _engine_imports(path) == [], f"{_module_name(path)} imports a log engine's module"


def test_the_engine_check_sees_an_import(tmp_path: Path) -> None:
    """The check above finds every way of naming an engine's module, and allows the rest."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pipelines_events.log.memory\n"
        "from pipelines_events.log.postgres import PostgresEventLog\n"
        "from pipelines_events.log import filesnapshots, base\n"
        "from pipelines_events.log.jsonl import JsonlEventLog\n"
        "from pipelines_events.log.open import open_log\n"
        "from pipelines_events.log.chain import seal\n",
        encoding="utf-8",
    )
    assert _engine_imports(sample) == [
        "line 1: pipelines_events.log.memory",
        "line 2: pipelines_events.log.postgres",
        "line 4: pipelines_events.log.jsonl",
        "line 3: pipelines_events.log.filesnapshots",
    ]
    assert STORAGE_SOURCES
