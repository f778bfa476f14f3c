"""Dependencies point one way: accounts -> payments -> cart -> store -> pagecache -> live.

Every module of the app packages is parsed (imports inside functions and TYPE_CHECKING
blocks count too: a cycle hidden in a function body is still a cycle). A lower app that
needs a higher one to act announces it (a signal) instead of importing it. The Stripe
emulator is a separate process: the app never imports it, and it imports nothing of the app.
`amazin` (settings, urls, ASGI) wires everything together and is not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Highest first; an app may import itself and the apps after it. `pagecache` (the copies
# pages keep) sits between the pages and the transport: store keeps its pages there, and
# live only tells it what changed (the listener pagecache registers), so live knows no cache.
LAYERS = ["accounts", "payments", "cart", "store", "pagecache", "live"]
EMULATOR = "stripe_emulator"
APPS = {*LAYERS, EMULATOR}


def modules(package: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []


def imported_packages(path: Path, package: str) -> set[str]:
    """Top-level packages this module imports, anywhere in it (relative imports: its own)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    if package == EMULATOR:
        allowed: set[str] = {EMULATOR}
    else:
        allowed = set(LAYERS[LAYERS.index(package) :])
    return [
        f"{path.relative_to(root)} imports {imported}"
        for path in modules(package, root)
        for imported in sorted(imported_packages(path, package) & (APPS | {"amazin"}) - allowed)
        if not (imported == "amazin" and package != EMULATOR)
    ]


@pytest.mark.parametrize("package", [*LAYERS, EMULATOR])
def test_imports_point_down_only(package: str) -> None:
    assert violations(package) == []


def test_the_check_sees_hidden_and_upward_imports(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "probe.py").write_text(
        "import live.channel\nfrom . import models\n"
        "def f():\n    from payments import stripe_api\n    import stripe_emulator\n"
    )
    (tmp_path / EMULATOR).mkdir()
    (tmp_path / EMULATOR / "probe.py").write_text("from amazin import settings\nimport store\n")

    assert violations("store", tmp_path) == [
        "store/probe.py imports payments",
        "store/probe.py imports stripe_emulator",
    ]
    assert violations(EMULATOR, tmp_path) == [
        "stripe_emulator/probe.py imports amazin",
        "stripe_emulator/probe.py imports store",
    ]


def test_every_app_package_is_checked() -> None:
    assert all(modules(package) for package in [*LAYERS, EMULATOR])
