"""Counters of what the middleware did, readable as ``middleware.metrics`` and exported to
Prometheus (``prometheus_client``) or OpenTelemetry (``opentelemetry-api``) when one is
installed (optional extras, never required).

Rules:
- Counting never does I/O and never fails a request.
- The exporters read the counters at each scrape or collection; nothing is pushed.
- An exporter whose library is missing raises ``ImportError`` naming the extra to install
  (``lazysession[prometheus]``, ``lazysession[opentelemetry]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Metrics:
    """Monotonic counters since start-up (per process); pass one as ``metrics=`` to the
    middleware to read or export it."""

    created: int = 0
    loaded: int = 0
    saved: int = 0
    touched: int = 0
    deleted: int = 0
    skipped: int = 0
    swept: int = 0
    sweeps: int = 0
    sweep_seconds: float = 0.0
    store_errors: int = 0
    interrupted: int = 0
    evicted: int = 0

    def record_sweep(self, deleted: int, seconds: float) -> None:
        """Count one sweep: the sessions it deleted and how long it took."""
        self.sweeps += 1
        self.swept += deleted
        self.sweep_seconds += seconds

    def as_dict(self) -> dict[str, float]:
        """Every counter by name."""
        return asdict(self)


# Each counter: its field, its exported name (Prometheus joins with "_" and adds "_total";
# OpenTelemetry joins with "."), a description and an OpenTelemetry unit.
COUNTERS = (
    ("created", "sessions_created", "Sessions created", "{session}"),
    ("loaded", "sessions_loaded", "Sessions loaded from the store", "{session}"),
    ("saved", "sessions_saved", "Sessions saved", "{session}"),
    ("touched", "sessions_touched", "Sessions whose expiry was extended", "{session}"),
    ("deleted", "sessions_deleted", "Sessions deleted by the app", "{session}"),
    ("skipped", "sessions_skipped", "Writes skipped by skip_persistence", "{session}"),
    ("swept", "sessions_swept", "Expired sessions deleted by the sweep", "{session}"),
    ("sweeps", "sweeps", "Sweeps run", "{sweep}"),
    ("sweep_seconds", "sweep_seconds", "Time spent sweeping", "s"),
    ("store_errors", "store_errors", "Store calls that failed", "{error}"),
    (
        "interrupted",
        "requests_interrupted",
        "Writes refused: the session ended meanwhile",
        "{request}",
    ),
    ("evicted", "sessions_evicted", "Sessions the store dropped to stay in its bound", "{session}"),
)


def _missing(caller: str, package: str, extra: str) -> ImportError:
    return ImportError(
        f"{caller} needs {package}, which is not installed: pip install 'lazysession[{extra}]'"
    )


def register_prometheus(metrics: Metrics, registry: Any = None, prefix: str = "lazysession") -> Any:
    """Expose ``metrics`` as Prometheus counters (``lazysession_sessions_created_total``,
    ...) on ``registry`` (the default registry if None). Returns the collector.

    Raises:
        ImportError: ``prometheus-client`` is not installed (``lazysession[prometheus]``).
    """
    try:
        from prometheus_client import REGISTRY
        from prometheus_client.core import CounterMetricFamily
    except ImportError as error:
        raise _missing("register_prometheus()", "prometheus-client", "prometheus") from error

    class Collector:
        def collect(self) -> Iterator[Any]:
            for field, name, description, _ in COUNTERS:
                yield CounterMetricFamily(
                    f"{prefix}_{name}", description, value=getattr(metrics, field)
                )

    collector = Collector()
    (registry if registry is not None else REGISTRY).register(collector)
    return collector


def register_opentelemetry(
    metrics: Metrics, meter_provider: Any = None, prefix: str = "lazysession"
) -> list[Any]:
    """Expose ``metrics`` as OpenTelemetry observable counters (``lazysession.sessions.created``,
    ...) from ``meter_provider`` (the global one if None), read at each collection.
    Returns the instruments.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed (``lazysession[opentelemetry]``).
    """
    try:
        from opentelemetry.metrics import CallbackOptions, Observation, get_meter_provider
    except ImportError as error:
        raise _missing("register_opentelemetry()", "opentelemetry-api", "opentelemetry") from error

    provider = meter_provider if meter_provider is not None else get_meter_provider()
    meter = provider.get_meter("lazysession")

    def observer(field: str) -> Callable[[CallbackOptions], list[Observation]]:
        return lambda _options: [Observation(getattr(metrics, field))]

    return [
        meter.create_observable_counter(
            f"{prefix}.{name.replace('_', '.')}",
            callbacks=[observer(field)],
            unit=unit,
            description=description,
        )
        for field, name, description, unit in COUNTERS
    ]
