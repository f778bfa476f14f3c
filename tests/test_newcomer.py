"""A newcomer's first steps: `.env.example` documents every variable the code reads and,
copied as it is, runs the demo; `make run` leaves nothing running when it gives up; the
documentation's links lead to files in this repository."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emulator import wait_until

REPO = Path(__file__).resolve().parents[1]
# Where the code reads its configuration (the app's settings, the launchers, the servers).
READERS = [
    REPO / "amazin",
    REPO / "store",
    REPO / "cart",
    REPO / "payments",
    REPO / "accounts",
    REPO / "live",
    REPO / "scripts",
]
# env("X"), env.int("X", ...), os.environ.get("X"), os.environ["X"], os.getenv("X"), and the
# launchers' reads of what they loaded (configured.get("X"), env.get("X")).
ENV_READ = re.compile(
    r"""(?:\benv(?:\.\w+)?\(|os\.environ\.get\(|os\.environ\[|os\.getenv\("""
    r"""|\bconfigured\.get\(|\bconfigured\[|\benv\.get\()\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Read by the tools the code runs under, never configured by a shop.
NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
DOCUMENTS = [
    REPO / "README.md",
    REPO / "bench" / "README.md",
    REPO / "stripe_emulator" / "README.md",
    REPO / "tests" / "fixtures" / "stripe" / "SOURCES.md",
    REPO / "tests" / "fixtures" / "stripe" / "events" / "SOURCES.md",
]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path in backticks or plain text that leaves the folder it is written in.
PARENT_PATH = re.compile(r"(?<![\w/.])(\.\./[\w./-]+)")


def variables_read() -> set[str]:
    found: set[str] = set()
    for folder in READERS:
        for path in folder.rglob("*.py"):
            if "migrations" in path.parts or path.name == "settings_test.py":
                continue
            found.update(ENV_READ.findall(path.read_text()))
    return found - NOT_CONFIGURATION


def variables_documented() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_documents_every_variable_the_code_reads() -> None:
    read = variables_read()

    assert {"SECRET_KEY", "CSRF_TRUSTED_ORIGINS", "WEB_CONCURRENCY", "EMULATOR_PORT"} <= read
    assert read - variables_documented() == set()


def test_the_variable_scan_finds_each_way_of_reading(tmp_path: Path) -> None:
    source = (
        'A = env("ONE")\nB = env.int("TWO", default=1)\nC = os.environ.get("THREE", "")\n'
        'D = os.environ["FOUR"]\nE = configured.get("FIVE")\nF = env.get("SIX", "x")\n'
    )

    assert set(ENV_READ.findall(source)) == {"ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX"}


def links(document: Path) -> list[str]:
    text = document.read_text()
    return MARKDOWN_LINK.findall(text) + PARENT_PATH.findall(text)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_in_the_documentation_points_inside_the_repository(document: Path) -> None:
    outside, missing = [], []
    for target in links(document):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor, not a file
        path = (document.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(REPO):
            outside.append(target)
        elif not path.exists():
            missing.append(target)

    assert (outside, missing) == ([], [])


def test_the_link_check_sees_paths_outside_the_repository(tmp_path: Path) -> None:
    document = REPO / "README.md"
    text = "See [the notes](../shared/notes.md) and `../shared/perf-reference.md`."

    found = set(MARKDOWN_LINK.findall(text) + PARENT_PATH.findall(text))

    assert found == {"../shared/notes.md", "../shared/perf-reference.md"}
    assert not (document.parent / "../shared/notes.md").resolve().is_relative_to(REPO)


def run_python(code: str, env: dict[str, str], timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_example_env_file_copied_as_it_is_runs_the_demo(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "ENV_FILE": str(REPO / ".env.example"),  # as `cp .env.example .env` leaves it
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "amazin.settings",
    }
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "from django.test import Client\n"
        "call_command('migrate', verbosity=0)\n"
        "client = Client(HTTP_HOST='localhost')\n"
        "print(client.get('/').status_code, client.get('/cart/').status_code)\n"
        "print(settings.DEBUG, bool(settings.SECRET_KEY), settings.STRIPE_SECRET_KEY)\n"
    )

    out = run_python(code, env).split()

    assert out == ["200", "200", "True", "True", "sk_test_emulator"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.emulator
def test_make_run_stops_what_it_started_when_it_gives_up(tmp_path: Path) -> None:
    emulator_port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "ENV_FILE": os.devnull,
        "PORT": str(free_port()),
        "EMULATOR_PORT": str(emulator_port),
        # The emulator starts first; then the migration fails: the database's folder is a file.
        "DATABASE_URL": f"sqlite:///{Path(__file__)}/db.sqlite3",
    }
    launcher = subprocess.Popen(
        [sys.executable, "scripts/dev.py"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the test can clean up after it
    )
    try:
        _, stderr = launcher.communicate(timeout=120)
        emulator_left = listening(emulator_port)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its group
            os.killpg(launcher.pid, signal.SIGKILL)
        wait_until(lambda: not listening(emulator_port), timeout=30)

    assert launcher.returncode != 0
    assert b"migrate" in stderr  # it gave up where the test made it fail
    assert emulator_left is False
