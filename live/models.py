"""SQLite's cross-process channel: a short log of changed ids that every process reads."""

from __future__ import annotations

from django.db import models


class Change(models.Model):
    """Ids that changed, as one process published them (`live.channel.SQLiteLog`)."""

    ids = models.TextField()
    origin = models.IntegerField(help_text="The publishing process (it has them already).")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.ids} from {self.origin}"
