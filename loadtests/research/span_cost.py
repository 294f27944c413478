"""CPU per SQL statement inside a batch span: statement spans recorded (a plain span) against dropped
(svc_common.telemetry.batch_span). Session 17, docs/benchmarks.md.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/span_cost.py
"""

from __future__ import annotations

import time

import sqlalchemy
from opentelemetry import trace

from svc_common.config import ServerSettings
from svc_common.telemetry import batch_span, configure_tracing

N = 5000


def per_statement_micros(engine: sqlalchemy.Engine, tracer: trace.Tracer, quiet: bool) -> float:
    with engine.connect() as conn:
        span = batch_span(tracer, "batch", {}) if quiet else tracer.start_as_current_span("batch")
        with span:
            started = time.process_time()
            for _ in range(N):
                conn.exec_driver_sql("SELECT 1")
            return (time.process_time() - started) / N * 1e6


def main() -> None:
    configure_tracing(ServerSettings(), "span-cost")  # instruments engines created from now on
    engine = sqlalchemy.create_engine("sqlite://")
    tracer = trace.get_tracer("span-cost")
    for _ in range(3):
        recorded = per_statement_micros(engine, tracer, quiet=False)
        dropped = per_statement_micros(engine, tracer, quiet=True)
        print(f"SELECT 1 on SQLite: {recorded:.1f} µs with its span recorded, {dropped:.1f} µs dropped (batch_span)")


if __name__ == "__main__":
    main()
