"""The layout shows the architecture: each package imports only the layers below it (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# higher imports lower, never the reverse; equal ranks are peers that do not import each other
RANK = {
    "app.main": 5,  # the app factory and lifespan
    "app.qualify": 5,  # tts-qualify: an operator's command over the model files, the codec and a running service
    "app.cli": 5,  # the tts-api command
    "app.api": 4,
    "app.service": 3,
    "app.engine": 2,
    "app.backend": 2,
    "app.codec": 1,
    "app.align": 1,  # the opt-in forced aligner, run by the engine beside the codec
    "app.audio": 1,
    "app.text": 1,
    "app.observability": 0,
    "app.settings": 0,
    "app.errors": 0,
    "app.prompts": 0,
    "app": 0,  # app/__init__.py: the version
}
PEERS_ALLOWED = {
    ("app.cli", "app.main"),  # the command serves the app
}
TOP_LEVEL = {"__init__.py", "main.py", "cli.py", "settings.py", "errors.py", "prompts.py"}


def layer(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if (name := ".".join(parts[:n])) in RANK:
            return name
    raise AssertionError(f"{module} belongs to no layer: add its package to RANK")


def imports(app: Path) -> list[tuple[str, str]]:
    found = []
    for path in app.rglob("*.py"):
        module = ".".join(path.relative_to(app.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found += [(module, n) for n in names if n == "app" or n.startswith("app.")]
    return found


def upward_imports(app: Path) -> list[str]:
    wrong = []
    for module, imported in imports(app):
        mine, theirs = layer(module), layer(imported)
        if mine == theirs:
            continue
        if RANK[theirs] > RANK[mine] or (
            RANK[theirs] == RANK[mine] > 0 and (mine, theirs) not in PEERS_ALLOWED
        ):
            wrong.append(f"{module} imports {imported}")
    return sorted(wrong)


def test_nothing_imports_a_layer_above_it() -> None:
    wrong = upward_imports(APP)
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_app_holds_the_factory_the_command_settings_and_packages() -> None:
    loose = {p.name for p in APP.glob("*.py")} - TOP_LEVEL
    assert not loose, f"modules at the top of app/ that belong in a package: {sorted(loose)}"
    packages = {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == {
        "api", "service", "engine", "backend", "codec", "align", "audio", "text", "observability", "qualify"
    }


def test_the_checker_sees_upward_and_sideways_imports(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "engine").mkdir(parents=True)
    (app / "engine" / "client.py").write_text("def f():\n    from app.api.errors import describe\n")
    (app / "engine" / "core.py").write_text("import app.backend.vllm\nfrom app.codec.interface import Geometry\n")
    (app / "audio").mkdir()
    (app / "audio" / "stitch.py").write_text("from app.codec.interface import Geometry\n")
    assert upward_imports(app) == [
        "app.audio.stitch imports app.codec.interface",  # the audio maths knows no codec package
        "app.engine.client imports app.api.errors",
        "app.engine.core imports app.backend.vllm",
    ]
