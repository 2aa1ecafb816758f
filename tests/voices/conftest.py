"""A real PostgreSQL server for the saved-voice tests: initdb in a temporary directory, a free port, its socket
there too. Debian's `postgresql` package (the Makefile's system-deps) keeps the binaries in
/usr/lib/postgresql/*/bin, off PATH. initdb refuses to run as root, so as root the server runs as the
`postgres` user (created by the package)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.harness import free_port

NOT_INSTALLED = (
    "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH): "
    "`make system-deps` installs Debian's postgresql package"
)


def postgres_bin() -> Path | None:
    """The directory of the newest PostgreSQL's initdb and pg_ctl."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running server; yields its base URL (no database)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(NOT_INSTALLED)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no postgres user to run the server as", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="tts-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        os.chown(root, user.pw_uid, user.pw_gid)
    run = lambda *argv: subprocess.run(_as_server_user([*argv]), capture_output=True, text=True, timeout=120)  # noqa: E731
    init = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "tts", "--auth=trust", "-E", "UTF8", "--no-sync")
    assert init.returncode == 0, init.stderr
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    start = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start")
    assert start.returncode == 0, start.stdout + start.stderr + (root / "log").read_text(errors="replace")
    try:
        yield f"postgresql://tts@127.0.0.1:{port}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database of the server, for one test."""
    import psycopg

    name = f"voices_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each kind: a SQLite file of the test, then a database of the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'voices' / 'voices.db'}"
    return request.getfixturevalue("postgres_url")
