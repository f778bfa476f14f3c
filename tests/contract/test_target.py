"""`make test-stripe`: skipped without a key, refused with one that is not a test key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_against_stripe(key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRIPE_CONTRACT_TARGET": "stripe", "STRIPE_SECRET_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract/test_payment_intents.py", "-q"]
        + ["-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_key_every_contract_test_is_skipped() -> None:
    result = run_against_stripe("")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in result.stdout and "passed" not in result.stdout
    assert "needs STRIPE_SECRET_KEY=sk_test_" in result.stdout


def test_a_key_that_is_not_a_test_key_stops_the_run() -> None:
    result = run_against_stripe("sk_live_not_a_real_key")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "must start with sk_test_" in result.stdout + result.stderr
