"""The circuit breaker against a failing CRM: it opens after failures in a row, holds the
adapter's events without spending their attempts (nothing dead-lettered), probes with backoff,
closes on the first success; another adapter keeps going; status and metrics show it."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.receiver.crm import HttpForwardAdapter, SqlCrmAdapter
from omnihook.receiver.ops import METRICS, read_status
from omnihook.receiver.ops.breaker import CircuitBreaker, CircuitPolicy

from .conftest import Bridge, chat


class FlakyCrm:
    """A CRM endpoint that answers 503 while ``down``, else 200; counts the calls."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.down = True
        self.calls = 0
        httpserver.expect_request("/hook").respond_with_handler(self.answer)
        self.url = httpserver.url_for("/hook")

    def answer(self, request: Request) -> Response:
        self.calls += 1
        if self.down:
            return Response('{"error": "maintenance"}', status=503)
        return Response("{}", status=200, content_type="application/json")


def circuit_value() -> float:
    return (
        METRICS.registry.get_sample_value("omnihook_crm_circuit_open", {"adapter": "forward"}) or 0
    )


async def test_the_circuit_opens_holds_probes_and_closes(
    bridge: Bridge, httpserver: HTTPServer
) -> None:
    crm = FlakyCrm(httpserver)
    forward = HttpForwardAdapter("forward", url=crm.url, attempts=1, delay=0)
    forward.circuit_policy = CircuitPolicy(failures=3, probe_after=30, max_probe_after=100)
    forward.circuit_clock = lambda: bridge.now
    bridge.add(forward)
    bridge.add(SqlCrmAdapter(bridge.store))  # another adapter: it keeps going
    [start, message, close] = chat("chat-start", "visitor-message", "chat-close")

    await bridge.deliver(start)  # attempt 1 fails
    await bridge.later(5)  # attempt 2 fails
    await bridge.later(10)  # attempt 3 fails: three in a row, the circuit opens
    assert forward.circuit is not None
    assert forward.circuit.state == "open"
    assert circuit_value() == 1
    status = await read_status(bridge.store, bridge.now)
    assert any(line.startswith("CRM adapter forward: circuit open") for line in status.problems())
    assert crm.calls == 3

    # While open: the retry comes due (20 s later) and waits, the CRM is not called, no
    # attempt is spent.
    await bridge.later(20)
    assert crm.calls == 3
    [event] = await bridge.events()
    assert event.status == "failed"
    assert "circuit open after 3 failure(s) in a row" in (event.last_error or "")
    assert await bridge.store.sql_crm.contacts()  # the SQL CRM got the visitor meanwhile

    # The probe is due 30 s after opening: it fails, the next waits twice as long (60 s); the
    # probe's failure is the breaker's, so the event still has attempts left.
    await bridge.later(10)
    assert crm.calls == 4
    assert forward.circuit.state == "open"
    for _ in range(5):
        await bridge.later(11)
    assert crm.calls == 4
    crm.down = False
    await bridge.later(10)  # the second probe succeeds: closed, the event is done
    assert crm.calls == 5
    assert forward.circuit.state == "closed"
    assert circuit_value() == 0
    [event] = await bridge.events()
    assert event.status == "done"
    assert event.attempts > 4  # more runs than the policy's 4 attempts, yet never dead

    await bridge.deliver(message, close)  # closed: straight through
    assert [e.status for e in await bridge.events()] == ["done", "done", "done"]
    status = await read_status(bridge.store, bridge.now)
    assert status.problems() == []
    [circuit] = status.circuits
    assert circuit.value["state"] == "closed"


def test_a_refusal_proves_the_crm_up_and_failures_must_be_in_a_row() -> None:
    now = [0.0]
    breaker = CircuitBreaker("zoho", CircuitPolicy(failures=2), clock=lambda: now[0])
    breaker.failed("503")
    breaker.succeeded()  # e.g. a validation error answered by the CRM
    breaker.failed("503")
    assert breaker.state == "closed"
    breaker.failed("timeout")
    assert breaker.state == "open"
    assert breaker.check() == pytest.approx(30)
    now[0] = 30
    assert breaker.check() is None  # this call is the probe
    assert breaker.state == "half_open"
    assert breaker.check() == 1.0  # others wait while it runs
    breaker.failed("503")
    assert (breaker.state, breaker.wait) == ("open", 60)


def test_policies_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="probe_after"):
        CircuitPolicy(probe_after=0)
    with pytest.raises(ValueError, match="backoff"):
        CircuitPolicy(backoff=0.5)
    off = CircuitBreaker("off", CircuitPolicy(failures=0))
    for _ in range(10):
        off.failed("503")
    assert off.check() is None
