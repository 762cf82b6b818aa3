"""Fuzzing the receiver with a store: random and mutated bodies, deep nesting, odd Unicode, odd
numbers and dates. Every answer must be in the status table, JSON, never a 500; no exception may
escape; every body the receiver stored must be handled by a worker (none dead-lettered because
it could not be read back).

Bounded for ``uv run pytest`` (a few hundred bodies, seconds). The long run, the same test at any
size, with its figures printed at the end::

    OMNIHOOK_FUZZ_BODIES=100000 uv run pytest tests/receiver/test_fuzz.py -q -s
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnihook.contracts import samples
from omnihook.receiver import TOKEN_HEADER, HandlingPolicy, Router, Worker, create_app
from omnihook.receiver.crm import SqlCrmAdapter
from omnihook.receiver.event_log import logging_router
from omnihook.store import Store, protect_logging

TOKEN = "fuzz-token"
BODIES = int(os.environ.get("OMNIHOOK_FUZZ_BODIES", "1000"))
# Every answer the status table allows for a request with the right token and a bounded body.
ALLOWED = {200, 400, 413, 422}
SAMPLE_NAMES = sorted(samples.SAMPLE_NAMES)

# -- what hostile and broken senders send ----------------------------------------------------------

odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\u2028\u2029",
            "\ufeff",
            "\U0001f600",
            "\u202e",
            "e\u0301",
            "\x1b[31m",
            "\r\n2026-01-01 INFO forged",
            "x" * 5000,
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-02:00",
            "2025-02-30T10:00:00.000Z",
            "2025-01-01T10:00:00",
            "2025-01-01T10:00:00.000Z",
        ]
    ),
)
odd_numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, -0, 2**63, -(2**63) - 1, 10**400, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    st.none() | st.booleans() | odd_numbers | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)
RAW_TOKENS = [
    b"NaN",
    b"Infinity",
    b"-0",
    b"1e99999",
    b"123456789012345678901234567890",
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\\u0000"',
    b'"\xff"',
    b"[" * 3000 + b"]" * 3000,
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    """A real payload with a few of its fields deleted or replaced by odd values, sometimes with
    a raw token (NaN, a lone surrogate, deep nesting) spliced in where a value was."""
    document: Any = samples.sample(draw(st.sampled_from(SAMPLE_NAMES)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    body = json.dumps(document, ensure_ascii=draw(st.booleans())).encode()
    if draw(st.integers(0, 3)) == 0:
        marker = b'"__raw__"'
        body = json.dumps({**document, "crmData": "__raw__"}).encode()
        body = body.replace(marker, draw(st.sampled_from(RAW_TOKENS)), 1)
    return body


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(RAW_TOKENS),
    mutated_samples(),
    mutated_samples(),
    mutated_samples(),
)

# -- the run --------------------------------------------------------------------------------------


class Receiver:
    """The app with a SQLite store, driven from a synchronous hypothesis test on its own loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        # synchronous=off: durability is not what is fuzzed here, answers are.
        self.store = Store(f"sqlite:///{tmp_path / 'fuzz.db'}?synchronous=off")
        router = Router()
        router.on_any(lambda event: None)
        app = create_app(router, tokens=[TOKEN], store=self.store, run_worker=False,
                         max_body_bytes=256 * 1024)  # fmt: skip
        transport = httpx.ASGITransport(app=app)  # an exception in the app fails the test
        self.client = httpx.AsyncClient(transport=transport, base_url="http://r")

    def post(self, body: bytes) -> httpx.Response:
        request = self.client.post("/rocketchat", content=body, headers={TOKEN_HEADER: TOKEN})
        return self.loop.run_until_complete(request)

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    made = Receiver(tmp_path)
    try:
        yield made
    finally:
        made.close()


def stored_events(receiver: Receiver) -> int:
    """How many events the store holds that the logging router logs (all but Send Tests)."""
    counts: dict[str, int] = receiver.run(receiver.store.events.counts())
    return sum(counts.values())


def test_no_body_gets_an_answer_outside_the_table(receiver: Receiver) -> None:
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @settings(
        max_examples=BODIES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies)
    def one(body: bytes) -> None:
        response = receiver.post(body)
        statuses[response.status_code] += 1
        assert response.status_code in ALLOWED, (response.status_code, response.text, body[:200])
        assert response.headers["content-type"] == "application/json"
        document = response.json()
        assert isinstance(document, dict)
        if response.status_code != 200:
            assert set(document) >= {"error", "detail"}

    one()
    assert statuses[200] > 0  # the generators reach the store, not only the parser's refusals
    # Everything stored is handled as `omnihook serve` handles it by default (each event logged,
    # kept in the SQL CRM), through the log redactor: none dead-lettered for its own body.
    router = Router()
    router.include(logging_router())
    SqlCrmAdapter(receiver.store).register(router)
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    protect_logging([handler])
    events_logger = logging.getLogger("omnihook.events")
    events_logger.addHandler(handler)
    events_logger.setLevel(logging.INFO)
    try:
        worker = Worker(
            receiver.store, router, policy=HandlingPolicy(attempts=1), clock=lambda: 4e9
        )
        receiver.run(worker.drain())
    finally:
        events_logger.removeHandler(handler)
    assert len(log.getvalue().splitlines()) == stored_events(receiver)  # one line per event
    counts = receiver.run(receiver.store.events.counts())
    assert counts["dead"] == 0
    assert counts["pending"] == counts["failed"] == counts["processing"] == 0
    if "OMNIHOOK_FUZZ_BODIES" in os.environ:
        seconds = time.monotonic() - started
        total = sum(statuses.values())
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        print(
            f"\nfuzzed {total} bodies in {seconds:.0f} s ({total / seconds:.0f}/s): {shown}; "
            f"stored {counts['done']}, all handled, none dead, no 500, no exception"
        )
