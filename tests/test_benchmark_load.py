"""The served benchmarks read wrk's report, and refuse a run with failed requests."""

from __future__ import annotations

import pytest
from benchmarks._load import parse_wrk

REPORT = """Running 2s test @ http://127.0.0.1:8766/untouched
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   737.40us  102.99us   3.19ms   96.77%
    Req/Sec    10.92k   459.11    11.56k    61.90%
  Latency Distribution
     50%  715.00us
     75%  757.00us
     90%  790.00us
     99%  {p99}
  22808 requests in 2.10s, 2.94MB read
{extra}Requests/sec:  10860.23
Transfer/sec:      1.40MB
"""


@pytest.mark.parametrize(("p99", "ms"), [("980.00us", 0.98), ("1.25ms", 1.25), ("2.00s", 2000.0)])
def test_the_rate_and_the_99th_percentile_are_read_in_milliseconds(p99: str, ms: float) -> None:
    rate, tail = parse_wrk(REPORT.format(p99=p99, extra=""), "/untouched")
    assert rate == 10860.23
    assert tail == pytest.approx(ms)


def test_answers_other_than_2xx_fail_the_run() -> None:
    report = REPORT.format(p99="1.00ms", extra="  Non-2xx or 3xx responses: 12\n")
    with pytest.raises(RuntimeError, match="12 answers were not 2xx"):
        parse_wrk(report, "/write")


def test_connection_errors_fail_the_run() -> None:
    errors = "  Socket errors: connect 3, read 0, write 0, timeout 0\n"
    with pytest.raises(RuntimeError, match="connection errors"):
        parse_wrk(REPORT.format(p99="1.00ms", extra=errors), "/write")


def test_a_report_without_figures_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="could not be read"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused", "/write")
