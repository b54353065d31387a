"""What MemoryStore promises beyond the shared contract: the sessions it evicts to stay
within ``max_entries`` are counted in the middleware's metrics."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from lazysession import MemoryStore
from lazysession._expiry import utc_now
from lazysession.metrics import Metrics, register_prometheus
from tests.helpers import client
from tests.reliability.faults import asgi_app, wsgi_client


def test_a_store_used_alone_counts_evictions_into_the_metrics_it_reports_to() -> None:
    store = MemoryStore(max_entries=2)
    metrics = Metrics()
    store.report_to(metrics)
    store.report_to(metrics)  # reporting twice to the same counters counts once
    expires_at = utc_now() + timedelta(hours=1)
    for n in range(5):
        store.sync.save(f"{n}" * 64, {"n": n}, expires_at=expires_at)
    assert metrics.evicted == 3
    assert store.sync.count() == 2


def test_the_asgi_middlewares_metrics_count_what_its_store_evicted() -> None:
    store = MemoryStore(max_entries=2)
    metrics = Metrics()
    app = asgi_app(store, metrics=metrics)

    async def three_visitors() -> None:
        for n in range(3):
            async with client(app) as http:
                assert (await http.get("/write", params={"n": str(n)})).status_code == 200

    anyio.run(three_visitors)
    assert metrics.evicted == 1
    registry = CollectorRegistry()
    register_prometheus(metrics, registry)
    assert "lazysession_sessions_evicted_total 1.0" in generate_latest(registry).decode()


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
def test_the_wsgi_shells_metrics_count_what_their_store_evicted(shell: str) -> None:
    store = MemoryStore(max_entries=2)
    for n in range(3):
        http = wsgi_client(store, shell)
        assert http.get(f"/write?n={n}").status_code == 200
    metrics = shell_metrics(http)
    assert metrics.evicted == 1


def shell_metrics(http: object) -> Metrics:
    """The metrics of the middleware (or Flask interface) behind a test client."""
    application = http.application  # type: ignore[attr-defined]
    interface = getattr(application, "session_interface", None)
    found: Metrics = (interface if interface is not None else application).metrics
    return found
