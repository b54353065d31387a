"""Counters of what the middleware did, readable as ``middleware.metrics`` and exported to
Prometheus when ``prometheus_client`` is installed (an optional extra)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import Outcome


@dataclass
class Metrics:
    """Monotonic counters since start-up (per process)."""

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

    def record(self, outcome: Outcome) -> None:
        """Count what one request's outcome did (after the store carried it out)."""
        if outcome.skipped:
            self.skipped += 1
        write = outcome.write
        if write is not None:
            self.saved += 1
            if write.created:
                self.created += 1
        if outcome.touch is not None:
            self.touched += 1
        if outcome.delete is not None:
            self.deleted += 1

    def record_sweep(self, deleted: int, seconds: float) -> None:
        self.sweeps += 1
        self.swept += deleted
        self.sweep_seconds += seconds

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def register_prometheus(metrics: Metrics, registry: Any = None, prefix: str = "lazysession") -> Any:
    """Expose ``metrics`` as Prometheus counters (``lazysession_sessions_created_total``,
    ...) on ``registry`` (the default registry if None). Returns the collector."""
    from prometheus_client import REGISTRY
    from prometheus_client.core import CounterMetricFamily

    class Collector:
        def collect(self) -> Iterator[Any]:
            for name, value in metrics.as_dict().items():
                if name == "sweep_seconds":
                    yield CounterMetricFamily(
                        f"{prefix}_sweep_seconds", "Time spent sweeping", value=value
                    )
                elif name in ("sweeps", "store_errors"):
                    yield CounterMetricFamily(
                        f"{prefix}_{name}", name.replace("_", " "), value=value
                    )
                else:
                    yield CounterMetricFamily(
                        f"{prefix}_sessions_{name}", f"Sessions {name}", value=value
                    )

    collector = Collector()
    (registry if registry is not None else REGISTRY).register(collector)
    return collector
