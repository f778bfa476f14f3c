"""The bench's mail backend: notes when each message is handed to it, sends nothing.

`bench/webhooks.py` measures how long a confirmation email takes from its order's commit to
the mail backend: the server notes the commit (`/bench/order-email`), this notes the
hand-over, one line per message in `BENCH_MAIL_LOG` (`<subject>\t<time.time()>`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class TimedBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        now = time.time()
        with open(os.environ["BENCH_MAIL_LOG"], "a") as log:
            for message in email_messages:
                log.write(f"{message.subject}\t{now}\n")
        return len(email_messages)
