"""The key is compared in one place: app/api/auth.py (`Authenticator`, through `key_ok`). Everything else asks the
`Principal` it makes, never the configured key (docs/architecture.md, "Threat model"; STYLE.md, "Who is asking")."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

AUTH = "app/api/auth.py"  # the authenticator: the one module that compares a key

# modules that may read the configured key (`<...>.security.api_key`) though they compare nothing, and why
READS_CONFIGURED_KEY = {
    "app/main.py": "hands the key's value to Sentry's scrubber (init_sentry secrets=...), to be replaced in reports",
}

# modules that may read some other `.api_key` attribute, and why (a `.api_key` read anywhere else fails)
READS_OTHER_API_KEY = {
    "app/settings.py": "declares the settings: API_KEY becomes SecuritySettings.api_key, TTS_API_KEY the backend's",
    "app/backend/vllm.py": "BackendSettings.api_key: TTS_API_KEY, the key this service sends to vLLM",
    "app/qualify/cli.py": "args.api_key: the key tts-qualify sends to the service it checks (a client's key)",
    "app/api/protocols/speech_stream.py": "cfg.api_key: the key a config message carries, handed on as Auth(key)",
    **READS_CONFIGURED_KEY,
}


def _is_security(node: ast.expr) -> bool:
    """`security` or `<anything>.security`: the settings group that holds the configured key."""
    return (isinstance(node, ast.Name) and node.id == "security") or (
        isinstance(node, ast.Attribute) and node.attr == "security"
    )


def _api_key_reads(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """Every `<x>.api_key` and `getattr(<x>, "api_key")`: (line, the object `<x>`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "api_key":
            found.append((node.lineno, node.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "api_key"
        ):
            found.append((node.lineno, node.args[0]))
    return found


def _compares(tree: ast.AST) -> list[tuple[int, str]]:
    """`compare_digest` (hmac's, secrets', any) and `key_ok`, however they are reached or imported."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("compare_digest", "key_ok"):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name) and node.id in ("compare_digest", "key_ok"):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, a.name) for a in node.names if a.name in ("compare_digest", "key_ok")]
    return found


def key_checks(app: Path) -> tuple[list[str], set[str]]:
    """Where a module other than `AUTH` compares a key or reads one it may not; and the exceptions used."""
    wrong, used = [], set()
    for path in sorted(app.rglob("*.py")):
        name = path.relative_to(app.parent).as_posix()
        if name == AUTH:
            continue
        tree = ast.parse(path.read_text())
        wrong += [f"{name}:{line}: {what}: only {AUTH} compares a key" for line, what in _compares(tree)]
        for line, owner in _api_key_reads(tree):
            allowed = READS_CONFIGURED_KEY if _is_security(owner) else READS_OTHER_API_KEY
            if name in allowed:
                used.add(name)
            else:
                what = "the configured key" if _is_security(owner) else "an api_key"
                wrong.append(f"{name}:{line}: reads {what}: ask the Principal (app.api.auth.caller), not the key")
    return wrong, used


def test_no_module_but_the_authenticator_compares_or_reads_the_key() -> None:
    wrong, _ = key_checks(APP)
    assert not wrong, "\n".join(wrong)


def test_every_exception_is_still_needed() -> None:
    """An exception no module uses any more is removed, so that it cannot hide a new reader."""
    _, used = key_checks(APP)
    assert used == set(READS_OTHER_API_KEY)


def test_the_checker_sees_a_key_compared_or_read_outside_the_authenticator(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "api").mkdir(parents=True)
    (app / "api" / "routes.py").write_text(
        "from app.api.auth import key_ok\n"
        "def f(request, given):\n"
        "    return key_ok(request.app.state.settings.security.api_key, given)\n"
    )
    (app / "api" / "other.py").write_text(
        "import hmac, secrets\n"
        "from hmac import compare_digest as same\n"
        "def g(security, a):\n"
        "    return hmac.compare_digest(a, getattr(security, 'api_key')) or secrets.compare_digest(a, a)\n"
    )
    (app / "main.py").write_text("def h(settings, cfg):\n    return settings.security.api_key, cfg.api_key\n")
    (app / "api" / "auth.py").write_text("import hmac\ndef key_ok(a, b):\n    return hmac.compare_digest(a, b)\n")
    wrong, used = key_checks(app)
    assert wrong == [
        "app/api/other.py:2: compare_digest: only app/api/auth.py compares a key",
        "app/api/other.py:4: compare_digest: only app/api/auth.py compares a key",
        "app/api/other.py:4: compare_digest: only app/api/auth.py compares a key",
        "app/api/other.py:4: reads the configured key: ask the Principal (app.api.auth.caller), not the key",
        "app/api/routes.py:1: key_ok: only app/api/auth.py compares a key",
        "app/api/routes.py:3: key_ok: only app/api/auth.py compares a key",
        "app/api/routes.py:3: reads the configured key: ask the Principal (app.api.auth.caller), not the key",
    ]
    assert used == {"app/main.py"}  # its configured-key read is excused; cfg.api_key there too (READS_OTHER_API_KEY)
