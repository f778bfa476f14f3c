"""`make serve` on SQLite with two workers: a change made through one worker reaches the
viewers and the cached grid of the other (through the `live.Change` log it polls).

Which worker answers a connection is the kernel's choice, so the test tells them apart by
what each shows of itself: the boot token of its broker, in every page's
`data-live-last` and every stream's event ids.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from bench import run as bench
from tests.live.sse import SSEClient

ATTEMPTS = 60  # connections tried before concluding that a second worker never answers


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make serve`'s server (bench settings: production, grid cache on, `/bench/change`)
    with two workers on a SQLite file of its own, three products."""
    database = tmp_path_factory.mktemp("workers") / "db.sqlite3"
    env = bench.server_env(f"sqlite:///{database}")
    bench.prepare(env)
    bench.seed_catalog(env, 3)
    with bench.server(env, workers=2) as running:
        yield f"http://127.0.0.1:{running.port}"


def boot(last_id: str) -> str:
    return last_id.partition(":")[0]


def grid_by_worker(base: str) -> dict[str, str]:
    """The grid page as each of the two workers serves it (keyed by its broker's boot)."""
    pages: dict[str, str] = {}
    for _ in range(ATTEMPTS):
        with urllib.request.urlopen(f"{base}/", timeout=10) as response:
            html = response.read().decode()
        last = re.search(r'data-live-last="([^"]+)"', html)
        assert last, "the grid names its stream position"
        pages.setdefault(boot(last.group(1)), html)
        if len(pages) == 2:
            return pages
    raise AssertionError(f"one worker answered {ATTEMPTS} connections: {list(pages)}")


def viewer_on_each_worker(base: str, pk: int) -> dict[str, SSEClient]:
    """One open stream per worker: an unknown `last` gets a reset, whose id names the worker."""
    viewers: dict[str, SSEClient] = {}
    for _ in range(ATTEMPTS):
        stream = SSEClient(f"{base}/live/?last=0:0&ids={pk}")
        assert stream.status == HTTPStatus.OK
        reset = stream.wait_for(lambda event: event.name == "reset")
        if boot(reset.id) in viewers:
            stream.close()
            continue
        viewers[boot(reset.id)] = stream
        if len(viewers) == 2:
            return viewers
    for stream in viewers.values():
        stream.close()
    raise AssertionError(f"one worker answered {ATTEMPTS} streams: {list(viewers)}")


def test_a_change_through_one_worker_reaches_the_other_s_viewers_and_cached_grid(two_workers):
    pk = bench.first_page_ids(two_workers)[0]
    before = grid_by_worker(two_workers)  # each worker has the grid cached now
    assert all("Renamed by one worker" not in html for html in before.values())
    viewers = viewer_on_each_worker(two_workers, pk)
    try:
        query = urllib.parse.urlencode({"pk": pk, "name": "Renamed by one worker"})
        with urllib.request.urlopen(f"{two_workers}/bench/change?{query}", timeout=10) as r:
            assert r.status == HTTPStatus.OK

        events = {
            worker: stream.wait_for(
                lambda event: event.name == "cards" and str(pk) in event.json()["html"]
            )
            for worker, stream in viewers.items()
        }
    finally:
        for stream in viewers.values():
            stream.close()
    after = grid_by_worker(two_workers)  # each worker dispatched the change: caches dropped

    assert set(events) == set(before) == set(after)
    for worker, event in events.items():
        assert "Renamed by one worker" in event.json()["html"][str(pk)], worker
    for worker, html in after.items():
        assert "Renamed by one worker" in html, worker
