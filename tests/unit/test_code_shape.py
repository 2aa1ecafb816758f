"""The shape the codebase keeps (issue 30): no import circle in app/, no class over 250 lines but the settings
reader, no function over 60 lines but the WAV header's packing. Read from the source, so a change that breaks
one fails here with the place named."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
MAX_CLASS, MAX_FUNCTION = 250, 60
LONG_ALLOWED = {("settings.py", "Settings"), ("audio/pcm.py", "wav_header")}


def modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every app module `name` imports, at any level (TYPE_CHECKING blocks and functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_app() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_long_class_or_function() -> None:
    long = []
    for path in APP.rglob("*.py"):
        rel = path.relative_to(APP).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                lines = node.end_lineno - node.lineno + 1
                if lines > limit and (rel, node.name) not in LONG_ALLOWED:
                    long.append(f"{rel}:{node.lineno} {node.name}: {lines} lines (limit {limit})")
    assert long == []


def test_routes_take_their_collaborators_from_app_api_deps() -> None:
    """The loaded service is fetched from `app.state` in one place (app/api/deps.py; the WebSocket handshake,
    which has no `Request`, in app/api/session.py), and only there are its engine and backend reached: a route
    names the part it uses as a dependency."""
    found = []
    for path in (APP / "api").rglob("*.py"):
        rel = path.relative_to(APP).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            reads_state = (isinstance(node, ast.Constant) and node.value == "service") or (
                isinstance(node, ast.Attribute) and node.attr == "service" and ast.unparse(node.value).endswith("state")
            )
            reaches_in = (
                isinstance(node, ast.Attribute) and node.attr in ("engine", "backend") and ast.unparse(node.value).endswith("service")
            )
            if (reads_state and rel not in ("api/deps.py", "api/session.py")) or (reaches_in and rel != "api/deps.py"):
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert found == []
