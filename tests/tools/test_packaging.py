"""The dev tools ship with the package: `pip install .` finds `tools`, and every console script resolves."""

from __future__ import annotations

import importlib
import tomllib
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
