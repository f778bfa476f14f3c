"""The project's own wiring: production settings and the `make run` launcher."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.dev import uses_real_stripe

REPO = Path(__file__).resolve().parents[1]


def test_deploy_check_is_clean_with_production_values(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "ENV_FILE": os.devnull,
        "SECRET_KEY": "a-long-random-production-secret-0123456789-abcdefghijklmnopqrstuv",
        "ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("configured", "real"),
    [
        ({}, False),
        ({"STRIPE_SECRET_KEY": "sk_test_emulator"}, False),
        ({"STRIPE_SECRET_KEY": "sk_test_51Habc"}, True),
        ({"STRIPE_SECRET_KEY": "sk_live_51Habc"}, True),
        (
            {"STRIPE_SECRET_KEY": "sk_test_51Habc", "STRIPE_API_BASE": "http://127.0.0.1:12111"},
            False,
        ),
    ],
)
def test_make_run_starts_the_emulator_unless_a_real_key_is_set(configured, real):
    assert uses_real_stripe(configured) is real
