"""live/ is a transport below every app: it imports none of them."""

from __future__ import annotations

import ast

from tests.live.conftest import REPO

APPS = {"store", "cart", "payments", "accounts", "pagecache", "stripe_emulator", "amazin"}


def imported_packages(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_live_imports_no_app():
    modules = sorted((REPO / "live").rglob("*.py"))

    imports = {path.name: imported_packages(path.read_text()) & APPS for path in modules}

    assert len(modules) >= 10
    assert imports == {path.name: set() for path in modules}


def test_the_check_sees_an_import_of_an_app():
    assert imported_packages("from store.models import Product\nimport cart.views") == {
        "store",
        "cart",
    }
