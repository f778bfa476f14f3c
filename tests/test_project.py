"""The project's own wiring: production settings and the `make run` launcher."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.dev import uses_real_stripe

REPO = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "SECRET_KEY": "a-long-random-production-secret-0123456789-abcdefghijklmnopqrstuv",
    "ALLOWED_HOSTS": "shop.example.com",
    "SITE_URL": "https://shop.example.com",
    "STRIPE_SECRET_KEY": "sk_live_51Habcdefghijklmnop",
    "STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdefghijklmnopqrstuv",
    "EMAIL_URL": "smtp+tls://shop:secret@smtp.example.com:587",
}


def manage_check(tmp_path: Path, configured: dict[str, str], *args: str):
    env = {
        "PATH": os.environ["PATH"],
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **configured,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_check_is_clean_with_production_values(tmp_path):
    result = manage_check(tmp_path, PRODUCTION, "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("unsafe", "check_id"),
    [
        ({"STRIPE_SECRET_KEY": ""}, "amazin.E001"),
        ({"STRIPE_SECRET_KEY": "sk_test_emulator"}, "amazin.E001"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "amazin.E002"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_amazin_emulator_secret"}, "amazin.E002"),
        ({"SITE_URL": ""}, "amazin.E003"),
        ({"SITE_URL": "http://localhost:8000"}, "amazin.E003"),
        ({"SITE_URL": "http://127.0.0.1"}, "amazin.E003"),
        ({"DELAYED_PAYMENT_HOLD_HOURS": "0"}, "amazin.E004"),
        ({"TRUSTED_PROXY_HOPS": "-1"}, "amazin.E005"),
        ({"SHIPPING_RATES": ",".join(f"r{i}:Rate {i}:{i}00" for i in range(6))}, "amazin.E006"),
        ({"SHIPPING_RATES": "standard:Standard"}, "amazin.E006"),
        ({"SHIPPING_COUNTRIES": "US,CU,GB"}, "amazin.E007"),
        ({"SHIPPING_COUNTRIES": "US,USA"}, "amazin.E007"),
    ],
)
@pytest.mark.parametrize("args", [("--deploy",), ()])
def test_production_refuses_development_stripe_secrets_and_a_local_site_url(
    tmp_path, unsafe, check_id, args
):
    result = manage_check(tmp_path, PRODUCTION | unsafe, *args)

    assert result.returncode != 0
    assert check_id in result.stderr


@pytest.mark.parametrize(
    ("unsafe", "check_id"),
    [
        ({"SITE_URL": "http://shop.example.com"}, "amazin.W001"),
        ({"ALLOWED_HOSTS": "*"}, "amazin.W002"),
        ({"EMAIL_URL": "consolemail://"}, "amazin.W003"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_x"}, "amazin.W004"),
        ({"STRIPE_API_BASE": "http://api.stripe.example.com"}, "amazin.W005"),
    ],
)
def test_the_deploy_check_warns_of_values_unsafe_in_production(tmp_path, unsafe, check_id):
    result = manage_check(tmp_path, PRODUCTION | unsafe, "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert check_id in result.stderr
    assert manage_check(tmp_path, PRODUCTION | unsafe).returncode == 0  # it still runs


def test_an_unset_email_url_is_a_deploy_warning(tmp_path):
    configured = {k: v for k, v in PRODUCTION.items() if k != "EMAIL_URL"}

    result = manage_check(tmp_path, configured, "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "amazin.W003" in result.stderr


def test_an_unset_webhook_secret_never_falls_back_to_the_emulators(tmp_path):
    configured = {k: v for k, v in PRODUCTION.items() if k != "STRIPE_WEBHOOK_SECRET"}

    result = manage_check(tmp_path, configured)

    assert result.returncode != 0
    assert "amazin.E002" in result.stderr


def test_a_deployment_can_knowingly_silence_the_local_site_url_check(tmp_path):
    configured = PRODUCTION | {
        "SITE_URL": "http://127.0.0.1:8000",
        "SILENCED_SYSTEM_CHECKS": "amazin.E003",
    }

    result = manage_check(tmp_path, configured)

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage_check(tmp_path, {})

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


def test_tasks_are_not_logged_one_by_one_but_their_failures_are(tmp_path):
    """django-tasks says "started" and "finished" at INFO for every task (the periodic sweep
    every 30 s included): not in the shop's log at its default level; a failed task is."""
    levels = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, logging; django.setup(); log = logging.getLogger('django_tasks'); "
            "print(log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.ERROR))",
        ],
        cwd=REPO,
        env={
            "PATH": os.environ["PATH"],
            "ENV_FILE": os.devnull,
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "amazin.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert levels.stdout.split() == ["False", "True"], levels.stderr
