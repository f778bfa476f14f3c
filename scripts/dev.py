"""`make run`: the demo shop on one laptop.

Without a real Stripe key this starts the bundled Stripe emulator, points the app at it,
migrates, seeds the demo catalog and serves the shop; with `STRIPE_SECRET_KEY=sk_test_...`
in `.env` (and no `STRIPE_API_BASE`) it talks to real Stripe and starts no emulator.
A process that dies is started again, with back-off (scripts/supervise.py); when it gives
up (the shop did not answer in time, a process keeps dying) it stops everything it started,
as Ctrl-C does.

Ports: the shop on PORT (8000), the emulator on EMULATOR_PORT (12111), both on 127.0.0.1;
the emulator keeps its state in EMULATOR_DATA (.stripe_emulator.sqlite3).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.supervise import GaveUp, Supervisor, stop_on_signals  # noqa: E402

PY = sys.executable
PORT = int(os.environ.get("PORT", "8000"))
EMULATOR_PORT = int(os.environ.get("EMULATOR_PORT", "12111"))
EMULATOR_SECRET = "whsec_amazin_emulator_secret"


def wait_for(url: str, supervisor: Supervisor | None = None) -> None:
    """Until `url` answers; SystemExit after RUN_WAIT_SECONDS (30; the caller stops what it
    started). With a `supervisor`, children that die meanwhile are started again."""
    timeout = float(os.environ.get("RUN_WAIT_SECONDS") or 30)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up within {timeout:.0f} s") from None
            if supervisor is not None:
                supervisor.check()
            time.sleep(0.2)


def uses_real_stripe(configured: Mapping[str, str]) -> bool:
    """A real secret key and no other API base: talk to Stripe, start no emulator."""
    key = configured.get("STRIPE_SECRET_KEY", "")
    real_key = key.startswith(("sk_test_", "sk_live_", "rk_")) and key != "sk_test_emulator"
    return real_key and not configured.get("STRIPE_API_BASE")


def main() -> None:
    launched_with = dict(os.environ)
    # .env (or ENV_FILE) read exactly as the app reads it (amazin/settings.py): the
    # environment wins over the file.
    environ.Env.read_env(os.environ.get("ENV_FILE", ROOT / ".env"), overwrite=False)
    configured = os.environ
    real_stripe = uses_real_stripe(configured)

    # The children read .env themselves; they get only what `make run` decides on top of it.
    env = {**launched_with, "DEBUG": configured.get("DEBUG", "1")}
    env.setdefault("SITE_URL", f"http://localhost:{PORT}")
    if not real_stripe:
        env.update(
            STRIPE_API_BASE=f"http://127.0.0.1:{EMULATOR_PORT}",
            STRIPE_SECRET_KEY="sk_test_emulator",
            STRIPE_WEBHOOK_SECRET=EMULATOR_SECRET,
        )
    supervisor = Supervisor(cwd=ROOT, env=env, prefix="run")
    stop_on_signals(supervisor)
    try:
        serve(supervisor, env, real_stripe=real_stripe)
    except GaveUp as exc:
        print(f"run: giving up: {exc}; stopping everything", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except SystemExit as exc:
        if exc.code:  # it gave up (something did not come up): say what is stopped
            print(f"run: {exc.code}; stopping everything", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        raise
    finally:
        supervisor.stop()  # whatever happened, nothing it started outlives it


def serve(supervisor: Supervisor, env: dict[str, str], *, real_stripe: bool) -> None:
    """Start the demo's processes under `supervisor` and watch them until stopped."""
    if not real_stripe:
        emulator = env["STRIPE_API_BASE"]
        supervisor.start(
            "the Stripe emulator",
            [
                PY, "-m", "stripe_emulator",
                "--port", str(EMULATOR_PORT),
                "--forward-to", f"http://127.0.0.1:{PORT}/stripe/webhook/",
                "--webhook-secret", EMULATOR_SECRET,
                "--data", os.environ.get("EMULATOR_DATA") or str(ROOT / ".stripe_emulator.sqlite3"),
                "--quiet",
            ],
        )  # fmt: skip
        wait_for(f"{emulator}/healthz")

    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True)
    staff = subprocess.run(
        [*manage, "demo_staff"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    staff_email, staff_password = staff.stdout.split()
    supervisor.start("the shop", [*manage, "runserver", f"127.0.0.1:{PORT}", "--noreload"])
    # Emails, refunds, webhook events, reconciliation with Stripe, the reservation sweep.
    supervisor.start("the worker", [*manage, "shop_worker", "--verbosity", "0"])
    wait_for(f"http://127.0.0.1:{PORT}/healthz", supervisor=supervisor)

    print()
    print(f"  Amazin is running:  http://localhost:{PORT}/")
    print(f"  Staff admin:        http://localhost:{PORT}/admin/")
    print(f"                      {staff_email} / {staff_password}  (new password each run)")
    if real_stripe:
        print("  Stripe:             real Stripe (test mode); forward webhooks with")
        print(f"                      stripe listen --forward-to localhost:{PORT}/stripe/webhook/")
    else:
        print(f"  Stripe emulator:    http://127.0.0.1:{EMULATOR_PORT}/  (dashboard)")
        print("  Test card:          4242 4242 4242 4242, any future date, any CVC")
        print("                      (4000 0000 0000 0002 is declined)")
    print("  Ctrl-C stops everything.")
    print()
    supervisor.run()  # a process that dies is started again (scripts/supervise.py)


if __name__ == "__main__":
    main()
