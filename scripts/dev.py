"""`make run`: the demo shop on one laptop.

Without a real Stripe key this starts the bundled Stripe emulator, points the app at it,
migrates, seeds the demo catalog and serves the shop; with `STRIPE_SECRET_KEY=sk_test_...`
in `.env` (and no `STRIPE_API_BASE`) it talks to real Stripe and starts no emulator.
Ctrl-C stops everything it started.

Ports: the shop on PORT (8000), the emulator on EMULATOR_PORT (12111), both on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT = int(os.environ.get("PORT", "8000"))
EMULATOR_PORT = int(os.environ.get("EMULATOR_PORT", "12111"))
EMULATOR_SECRET = "whsec_amazin_emulator_secret"


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up within {timeout:.0f} s") from None
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
    children: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args, cwd=ROOT, env=env)
        children.append(child)
        return child

    def stop_children() -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    def stop_all(*_: object, status: int = 0) -> None:
        stop_children()
        raise SystemExit(status)

    # However it gives up (a server that never came up, a failed migration, an error), it
    # leaves nothing it started running: this runs on every exit but a SIGKILL.
    atexit.register(stop_children)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    if not real_stripe:
        emulator = f"http://127.0.0.1:{EMULATOR_PORT}"
        env.update(
            STRIPE_API_BASE=emulator,
            STRIPE_SECRET_KEY="sk_test_emulator",
            STRIPE_WEBHOOK_SECRET=EMULATOR_SECRET,
        )
        start(
            PY, "-m", "stripe_emulator",
            "--port", str(EMULATOR_PORT),
            "--forward-to", f"http://127.0.0.1:{PORT}/stripe/webhook/",
            "--webhook-secret", EMULATOR_SECRET,
            "--data", str(ROOT / ".stripe_emulator.sqlite3"),
            "--quiet",
        )  # fmt: skip
        wait_for(f"{emulator}/healthz")

    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True)
    staff = subprocess.run(
        [*manage, "demo_staff"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    staff_email, staff_password = staff.stdout.split()
    start(*manage, "runserver", f"127.0.0.1:{PORT}", "--noreload")
    # Emails, refunds, webhook events, reconciliation with Stripe, the reservation sweep.
    start(*manage, "shop_worker", "--verbosity", "0")
    wait_for(f"http://127.0.0.1:{PORT}/healthz")

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

    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    print("a process exited (is the port taken?); stopping the rest", file=sys.stderr)
    stop_all(status=1)


if __name__ == "__main__":
    main()
