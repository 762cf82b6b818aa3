"""Receiver throughput: each target in its own uvicorn process (uvloop, httptools, no access log),
loaded alone by the load generator (``bench.load``) in another, the same payloads, concurrency and
duration for every target. Each target's server is loaded with each payload in turn.

Targets: the ceiling (bare Starlette), omnihook (inline, and stored on SQLite and PostgreSQL), and
what users write instead (``bench.anchors``): a stateless hand-written FastAPI receiver and its
durable variants (SQLAlchemy on SQLite and PostgreSQL, Celery on Redis and RabbitMQ).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .procs import free_port, launch, python_json, stop, wait_ready
from .servers import TOKEN

__all__ = ["DURABLE_ANCHORS", "ReceiverTarget", "receiver_targets", "run_receivers", "with_schema"]

DURABLE_ANCHORS = {
    "sqlalchemy-sqlite": "FastAPI + SQLAlchemy on SQLite",
    "sqlalchemy-postgres": "FastAPI + SQLAlchemy on PostgreSQL",
    "celery-redis": "FastAPI + Celery on Redis",
    "celery-amqp": "FastAPI + Celery on RabbitMQ",
}
"""The hand-written durable receivers, by key (a run has those whose service it was given)."""


@dataclass(frozen=True)
class ReceiverTarget:
    key: str
    name: str
    app: str
    """``module:factory`` for ``uvicorn --factory``."""
    env: Mapping[str, str] = field(default_factory=dict)
    processes: int = 1
    broker: str | None = None
    """A Celery broker whose queue (``env["BENCH_QUEUE"]``) is emptied while loaded, then removed."""


def receiver_targets(
    workdir: Path,
    postgres_url: str | None,
    new_schema: Callable[[], str],
    redis_url: str | None = None,
    amqp_url: str | None = None,
) -> list[ReceiverTarget]:
    """Every target of a run, omnihook's first; ``new_schema()`` names a fresh PostgreSQL schema
    (dropped by the caller at the end)."""

    def stored(schema: str) -> dict[str, str]:
        assert postgres_url is not None
        return {"BENCH_STORE": with_schema(postgres_url, schema)}

    targets = [
        ReceiverTarget("bare", "bare Starlette (reads the body)", "bench.servers:bare"),
        ReceiverTarget("fastapi", "hand-written FastAPI (token, pydantic)", "bench.anchors:fastapi_handwritten"),
        ReceiverTarget("inline", "omnihook, no store (inline)", "bench.servers:inline"),
        ReceiverTarget("sqlite", "omnihook, SQLite store", "bench.servers:stored",
                       {"BENCH_STORE": f"sqlite:///{workdir / 'receiver.db'}"}),
    ]  # fmt: skip
    if postgres_url:
        targets += [
            ReceiverTarget("postgres", "omnihook, PostgreSQL store", "bench.servers:stored", stored(new_schema())),
            ReceiverTarget("postgres2", "omnihook, PostgreSQL, 2 processes", "bench.servers:stored",
                           stored(new_schema()), processes=2),
        ]  # fmt: skip
    targets.append(
        ReceiverTarget("sqlalchemy-sqlite", "hand-written FastAPI + SQLAlchemy, SQLite (aiosqlite)",
                       "bench.anchors:fastapi_sqlalchemy",
                       {"BENCH_DATABASE": f"sqlite+aiosqlite:///{workdir / 'sqlalchemy.db'}"})
    )  # fmt: skip
    if postgres_url:
        targets.append(
            ReceiverTarget("sqlalchemy-postgres", "hand-written FastAPI + SQLAlchemy, PostgreSQL (psycopg)",
                           "bench.anchors:fastapi_sqlalchemy",
                           {"BENCH_DATABASE": _sqlalchemy_url(postgres_url), "BENCH_SCHEMA": new_schema()})
        )  # fmt: skip
    for key, name, broker in (("celery-redis", "Redis", redis_url),
                              ("celery-amqp", "RabbitMQ, publisher confirms", amqp_url)):  # fmt: skip
        if broker:
            queue = f"omnihook-bench-{uuid.uuid4().hex[:8]}"
            targets.append(
                ReceiverTarget(key, f"hand-written FastAPI + Celery .delay(), {name}",
                               "bench.anchors:fastapi_celery",
                               {"BENCH_BROKER": broker, "BENCH_QUEUE": queue}, broker=broker)
            )  # fmt: skip
    return targets


def with_schema(url: str, schema: str) -> str:
    """A PostgreSQL store URL for omnihook, its tables in ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _sqlalchemy_url(url: str) -> str:
    """A ``postgresql://`` URL (as omnihook takes it) for SQLAlchemy's async psycopg 3 driver."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgres", "postgresql") else url


def run_receivers(
    targets: list[ReceiverTarget],
    payloads: list[str],
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Load each target with each of ``payloads`` in turn: per target and payload, the load's
    result and the server's peak RSS (MiB) so far.

    The servers start together (their imports share the cores), then each is loaded alone while
    the others wait idle, and stopped once measured."""
    servers = []
    try:
        for target in targets:
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", target.app, "--factory",
                       "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                       "--no-access-log", "--log-level", "warning", "--workers", str(target.processes)]  # fmt: skip
            servers.append((target, port, launch(command, dict(target.env))))
        for _target, port, server in servers:
            wait_ready(server, port)
        results = {}
        for target, port, server in servers:
            with _broker_queue(target):
                results[target.key] = loads = python_json(
                    "bench.load", f"http://127.0.0.1:{port}/rocketchat",
                    *(f"--payload={payload}" for payload in payloads), "--concurrency", str(concurrency),
                    "--duration", str(duration), "--warmup", str(warmup), "--token", TOKEN,
                    "--pid", str(server.pid),
                )  # fmt: skip
            stop(server)
            print(f"  {target.name}: " + ", ".join(f"{load['per_second']:,.0f}/s ({payload})"
                  for payload, load in loads.items()), file=sys.stderr)  # fmt: skip
    finally:
        for _target, _port, server in servers:
            stop(server)
    return results


@contextmanager
def _broker_queue(target: ReceiverTarget) -> Iterator[None]:
    if target.broker is None:
        yield
        return
    from .anchors import drained, remove_queue

    queue = target.env["BENCH_QUEUE"]
    try:
        with drained(target.broker, queue):
            yield
    finally:
        remove_queue(target.broker, queue)
