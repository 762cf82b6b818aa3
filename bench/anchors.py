"""What users write instead of omnihook: FastAPI receivers, each an app factory for
``uvicorn --factory``, run like the others (one process, uvloop, httptools).

Every one checks the token and validates the payload with its own pydantic model
(``_LivechatPayload``, what a careful user models of Rocket.Chat's payload), then:

- ``fastapi_handwritten``: answers (stateless: an event is lost if the process dies before its
  work is done);
- ``fastapi_sqlalchemy``: inserts the raw body, the type and the room id with an SQLAlchemy async
  session (the ORM, a session per request from a dependency, as FastAPI's SQL tutorial does),
  commits, answers. ``BENCH_DATABASE`` is the SQLAlchemy URL: ``sqlite+aiosqlite:///...`` (WAL,
  and SQLite's default ``synchronous=FULL``, the durability of omnihook's SQLite store) or
  ``postgresql+psycopg://...`` (``BENCH_SCHEMA``: a schema to create the table in);
- ``fastapi_celery``: hands the event to a Celery task (``.delay()``) before answering.
  ``BENCH_BROKER`` is the broker URL (Redis; or RabbitMQ with publisher confirms, so that the
  answer follows the broker's acknowledgement), ``BENCH_QUEUE`` the queue. No Celery worker runs:
  what is measured is what the receiver accepts, while :func:`drained` empties the queue.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, LargeBinary, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .servers import TOKEN

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["WebhookEvent", "celery_app", "drained", "fastapi_celery", "fastapi_handwritten", "fastapi_sqlalchemy",
           "remove_queue"]  # fmt: skip


class _Visitor(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(alias="_id")
    token: str
    username: str | None = None
    name: str | None = None
    email: list[dict[str, Any]] | str | None = None
    phone: list[dict[str, Any]] | str | None = None


class _ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(alias="_id")
    username: str | None = None
    msg: str | None = None
    ts: datetime
    agent_id: str | None = Field(None, alias="agentId")


class _LivechatPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    id: str = Field(alias="_id")
    visitor: _Visitor
    agent: dict[str, Any] | None = None
    messages: list[_ChatMessage] = []
    tags: list[str] | None = None
    crm_data: Any = Field(None, alias="crmData")


def _check_token(token: str | None) -> None:
    if not secrets.compare_digest(token or "", TOKEN):
        raise HTTPException(status_code=401, detail="invalid token")


def _healthz(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


class _Base(DeclarativeBase):
    pass


class WebhookEvent(_Base):
    """The table a user keeps events in: raw body, type, room id, when received."""

    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


def fastapi_handwritten() -> FastAPI:
    """What users write today: FastAPI, their own pydantic model of the payload, a token check."""
    app = FastAPI()

    @app.post("/rocketchat")
    async def rocketchat(
        payload: _LivechatPayload,
        x_rocketchat_livechat_token: str | None = Header(default=None),
    ) -> dict[str, bool]:
        _check_token(x_rocketchat_livechat_token)
        return {"ok": True}

    _healthz(app)
    return app


def fastapi_sqlalchemy() -> FastAPI:
    """The hand-written receiver, durable: each event inserted with SQLAlchemy and committed
    before the answer."""
    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    url = os.environ["BENCH_DATABASE"]
    schema = os.environ.get("BENCH_SCHEMA")
    sqlite = url.startswith("sqlite")
    engine = create_async_engine(
        url,
        # PostgreSQL: one connection per concurrent request, none waits for the pool. SQLite
        # takes one writer at a time: 64 connections only wait on each other's lock (measured:
        # fewer events/s than one connection, p99 in seconds, "database is locked" past the
        # 5 s busy timeout), so it gets the one connection SQLite's own advice gives it.
        pool_size=1 if sqlite else 64,
        max_overflow=0,
        execution_options={"schema_translate_map": {None: schema}} if schema else {},
    )
    if sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def wal(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            if schema:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await connection.run_sync(_Base.metadata.create_all)
        yield
        await engine.dispose()

    async def session() -> AsyncIterator[AsyncSession]:
        async with sessions() as opened:
            yield opened

    app = FastAPI(lifespan=lifespan)

    @app.post("/rocketchat")
    async def rocketchat(
        request: Request,
        payload: _LivechatPayload,
        db: AsyncSession = Depends(session),  # noqa: B008 (FastAPI's way)
        x_rocketchat_livechat_token: str | None = Header(default=None),
    ) -> dict[str, bool]:
        _check_token(x_rocketchat_livechat_token)
        # FastAPI read the body to validate it; the request keeps it.
        db.add(WebhookEvent(type=payload.type, room_id=payload.id, body=await request.body()))
        await db.commit()
        return {"ok": True}

    _healthz(app)
    return app


def celery_app(broker: str, queue: str) -> Celery:
    """The Celery app a user would configure: JSON tasks on ``queue``, no result backend; on
    RabbitMQ, publisher confirms (a task is only sent once the broker acknowledged it)."""
    from celery import Celery

    app = Celery("omnihook-bench", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True} if broker.startswith("amqp") else {},
    )
    return app


def fastapi_celery() -> FastAPI:
    """The hand-written receiver handing each event to a Celery task before it answers."""
    celery = celery_app(os.environ["BENCH_BROKER"], os.environ["BENCH_QUEUE"])

    @celery.task(name="bench.handle_event")
    def handle_event(body: str, event_type: str, room_id: str) -> None:
        """What a worker would run (no worker runs in the benchmark)."""

    app = FastAPI()

    @app.post("/rocketchat")
    async def rocketchat(
        request: Request,
        payload: _LivechatPayload,
        x_rocketchat_livechat_token: str | None = Header(default=None),
    ) -> dict[str, bool]:
        _check_token(x_rocketchat_livechat_token)
        body = await request.body()
        # As users write it: a blocking publish inside the async endpoint (measured: as many
        # events/s as handing it to a thread, or more).
        handle_event.delay(body.decode(), payload.type, payload.id)
        return {"ok": True}

    _healthz(app)
    return app


@contextmanager
def drained(broker: str, queue: str, every: float = 1.0) -> Iterator[None]:
    """Empty ``queue`` every ``every`` seconds while the body runs, and once more at its end, so
    that the broker holds a steady, small queue as if a worker consumed it."""
    app = celery_app(broker, queue)
    app.control.purge()  # declares the queue too
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            app.control.purge()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        app.control.purge()


def remove_queue(broker: str, queue: str) -> None:
    """Delete ``queue`` and its exchange from the broker."""
    app = celery_app(broker, queue)
    with app.connection_for_write() as connection:
        bound = app.amqp.queues[queue].bind(connection.default_channel)
        bound.declare()  # the channel learns the bindings that delete() removes (Redis)
        bound.delete()
        if bound.exchange is not None:
            bound.exchange.delete()
