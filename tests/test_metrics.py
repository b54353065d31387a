"""Counters of what the middleware did, and their Prometheus export."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from prometheus_client import CollectorRegistry, generate_latest

from lazysession import MemoryStore, SessionMiddleware
from lazysession.metrics import COUNTERS, Metrics, register_opentelemetry, register_prometheus
from tests.helpers import client, make_app

pytestmark = pytest.mark.anyio


def middleware_of(app: object) -> SessionMiddleware:
    stack = app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(stack, SessionMiddleware):
        stack = stack.app
    return stack


async def test_the_middleware_counts_what_it_did() -> None:
    app = make_app(store=MemoryStore(), sweep_interval=None)
    async with client(app) as http:
        await http.get("/untouched")
        await http.get("/write", params={"a": "1"})  # created and saved
        await http.get("/write", params={"a": "2"})  # loaded and saved
        await http.get("/write", params={"a": "3"}, headers={"authorization": "Bearer t"})
        await http.get("/clear")  # loaded and deleted
    metrics = middleware_of(app).metrics
    assert (metrics.created, metrics.saved, metrics.loaded) == (1, 2, 3)
    assert (metrics.skipped, metrics.deleted, metrics.store_errors) == (1, 1, 0)


async def test_counters_are_exported_to_prometheus() -> None:
    app = make_app(store=MemoryStore(), sweep_interval=None)
    async with client(app) as http:
        await http.get("/write", params={"a": "1"})
    registry = CollectorRegistry()
    register_prometheus(middleware_of(app).metrics, registry)
    text = generate_latest(registry).decode()
    assert "lazysession_sessions_created_total 1.0" in text
    assert "lazysession_sessions_saved_total 1.0" in text


def test_every_counter_is_exported() -> None:
    assert sorted(field for field, *_ in COUNTERS) == sorted(Metrics().as_dict())


async def test_counters_are_exported_to_opentelemetry() -> None:
    app = make_app(store=MemoryStore(), sweep_interval=None)
    async with client(app) as http:
        await http.get("/write", params={"a": "1"})
        await http.get("/write", params={"a": "2"})
    reader = InMemoryMetricReader()
    register_opentelemetry(middleware_of(app).metrics, MeterProvider(metric_readers=[reader]))
    collected = reader.get_metrics_data()
    assert collected is not None
    [scope] = [scope for resource in collected.resource_metrics for scope in resource.scope_metrics]
    values = {
        metric.name: point.value
        for metric in scope.metrics
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    }
    assert values["lazysession.sessions.created"] == 1
    assert values["lazysession.sessions.saved"] == 2
    assert values["lazysession.sweep.seconds"] == 0
    assert len(values) == len(COUNTERS)


async def test_counters_can_be_handed_in_before_the_app_starts() -> None:
    metrics = Metrics()
    app = make_app(store=MemoryStore(), sweep_interval=None, metrics=metrics)
    async with client(app) as http:
        await http.get("/write", params={"a": "1"})
    assert metrics.created == 1
