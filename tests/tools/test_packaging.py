"""The package ships what it runs: `pip install .` finds `tools`, every console script resolves, and the voice
store's migrations are in the wheel."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.mark.parametrize("package", ["app", "tools"])
def test_package_discovery_includes(package: str) -> None:
    include = PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert any(fnmatch(package, pattern) for pattern in include), include
    assert (REPO / package / "__init__.py").is_file()


@pytest.mark.parametrize("script", sorted(PROJECT["project"]["scripts"]))
def test_console_script_resolves(script: str) -> None:
    module, _, attr = PROJECT["project"]["scripts"][script].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_the_installed_package_migrates_a_store(tmp_path: Path) -> None:
    """What the Dockerfile does (`pip install --no-deps .` of pyproject.toml, README.md, app, tools): the wheel
    has the voice store's migrations, and run from it (not this checkout) they bring a new SQLite store to head."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("app", "tools"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=src, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    migrations = REPO / "app/service/migrations"
    wanted = {p.relative_to(REPO).as_posix() for p in migrations.rglob("*") if p.suffix in (".py", ".mako")}
    assert "app/service/migrations/versions/0001_baseline.py" in wanted
    assert wanted <= shipped, sorted(wanted - shipped)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    check = (
        "import sqlalchemy as sa, sys; from app.service import migrations as m; "
        "assert m.__file__.startswith(sys.argv[1]), m.__file__; e = sa.create_engine(sys.argv[2]); m.upgrade(e); "
        "c = e.connect(); print(m.current(c) == (m.head(),))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", check, str(site), f"sqlite:///{tmp_path / 'v.db'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.strip() == "True", ran.stderr[-3000:]
