"""What reconciling reads from Rocket.Chat's REST API, against pytest-httpserver answering as
Rocket.Chat does: paging to the end, a permission named on 403, credentials on 401, the rate
limiter waited out (by an injected clock, no sleeping), Rocket.Chat unreachable."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from omnihook.receiver.rest import RocketChatApi, RocketChatRefused, RocketChatUnavailable

USER, TOKEN = "bot-user-id", "bot-personal-access-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def api(server: HTTPServer, clock: Clock) -> RocketChatApi:
    return RocketChatApi(server.url_for("/").rstrip("/"), USER, TOKEN, sleep=clock.sleep,
                         clock=clock, delay=0.01)  # fmt: skip


def room(number: int) -> dict[str, Any]:
    return {"_id": f"R{number}", "t": "l", "fname": f"Visitor {number}",
            "ts": f"2026-01-01T10:{number % 60:02d}:00.000Z", "v": {"_id": f"V{number}"}}  # fmt: skip


async def test_rooms_are_read_to_the_last_page(httpserver: HTTPServer) -> None:
    rooms = [room(n) for n in range(230)]

    def answer(request: Request) -> Response:
        assert request.headers["X-User-Id"] == USER
        assert request.headers["X-Auth-Token"] == TOKEN
        offset, count = int(request.args["offset"]), int(request.args["count"])
        assert count == 100  # Rocket.Chat caps a page at 100
        assert json.loads(request.args["createdAt"]) == {"start": "2026-01-01T00:00:00.000Z"}
        assert json.loads(request.args["sort"]) == {"ts": 1}
        page = rooms[offset : offset + count]
        body = {"rooms": page, "count": len(page), "offset": offset, "total": len(rooms),
                "success": True}  # fmt: skip
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/api/v1/livechat/rooms").respond_with_handler(answer)
    client = api(httpserver, Clock())
    found = await client.livechat_rooms(created={"start": "2026-01-01T00:00:00.000Z"})
    await client.aclose()
    assert [r["_id"] for r in found] == [r["_id"] for r in rooms]
    assert len(httpserver.log) == 3


async def test_a_missing_permission_is_named(httpserver: HTTPServer) -> None:
    body = {"success": False,
            "error": "User does not have the permissions required for this action [error-unauthorized]"}  # fmt: skip
    httpserver.expect_request("/api/v1/livechat/rooms").respond_with_json(body, status=403)
    client = api(httpserver, Clock())
    with pytest.raises(RocketChatRefused, match="give the bot the view-livechat-rooms permission"):
        await client.livechat_rooms()
    httpserver.clear()
    httpserver.expect_request("/api/v1/users.info").respond_with_json(body, status=403)
    with pytest.raises(RocketChatRefused, match="view-full-other-user-info"):
        await client.user("U1")
    await client.aclose()


async def test_wrong_credentials_are_said_so(httpserver: HTTPServer) -> None:
    body = {"status": "error", "message": "You must be logged in to do this."}
    httpserver.expect_request("/api/v1/livechat/rooms").respond_with_json(body, status=401)
    client = api(httpserver, Clock())
    with pytest.raises(RocketChatRefused, match=r"credentials .*You must be logged in"):
        await client.livechat_rooms()
    await client.aclose()


async def test_the_rate_limiter_is_waited_out_until_its_reset(httpserver: HTTPServer) -> None:
    # Our clock runs an hour ahead of Rocket.Chat's: its reset is read against the Date it
    # sends (the fake's server stamps the real time, to the second), not against ours.
    clock = Clock()
    clock.now = time.time() + 3600
    reset_ms = int((time.time() + 12.5) * 1000)
    limited = {"success": False, "error": "Error, too many requests. Please slow down. You must "
               "wait 13 seconds before trying this endpoint again. [error-too-many-requests]"}  # fmt: skip
    httpserver.expect_ordered_request("/api/v1/livechat/visitors.info").respond_with_json(
        limited,
        status=429,
        headers={
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset_ms),
        },
    )
    httpserver.expect_ordered_request("/api/v1/livechat/visitors.info").respond_with_json(
        {"visitor": {"_id": "V1", "username": "guest-1"}, "success": True}
    )
    client = api(httpserver, clock)
    assert await client.visitor("V1") == {"_id": "V1", "username": "guest-1"}
    await client.aclose()
    assert clock.sleeps == [pytest.approx(12.5, abs=1.5)]  # Date has a one-second grain


async def test_without_a_reset_header_the_wait_its_message_names_is_waited(
    httpserver: HTTPServer,
) -> None:
    clock = Clock()
    limited = {"success": False, "error": "Error, too many requests. Please slow down. You must "
               "wait 13 seconds before trying this endpoint again. [error-too-many-requests]"}  # fmt: skip
    httpserver.expect_ordered_request("/api/v1/livechat/visitors.info").respond_with_json(
        limited, status=429
    )
    httpserver.expect_ordered_request("/api/v1/livechat/visitors.info").respond_with_json(
        {"visitor": {"_id": "V1", "username": "guest-1"}, "success": True}
    )
    client = api(httpserver, clock)
    assert await client.visitor("V1") == {"_id": "V1", "username": "guest-1"}
    await client.aclose()
    assert clock.sleeps == [13.0]


async def test_a_visitor_or_user_gone_is_none(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/livechat/visitors.info").respond_with_json(
        {"success": False, "error": "visitor-not-found"}, status=400
    )
    client = api(httpserver, Clock())
    assert await client.visitor("gone") is None
    await client.aclose()


async def test_rocket_chat_unreachable_is_reported_after_a_few_tries() -> None:
    clock = Clock()
    client = RocketChatApi("http://127.0.0.1:9", USER, TOKEN, sleep=clock.sleep, clock=clock)
    with pytest.raises(RocketChatUnavailable, match=r"cannot reach Rocket.Chat .*after 3 attempts"):
        await client.livechat_rooms()
    await client.aclose()
    assert len(clock.sleeps) == 2


async def test_a_server_error_is_unavailable_not_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/livechat/rooms").respond_with_data("oops", status=502)
    client = api(httpserver, Clock())
    with pytest.raises(RocketChatUnavailable, match="502"):
        await client.livechat_rooms()
    await client.aclose()


async def test_a_server_ignoring_offset_does_not_page_forever(httpserver: HTTPServer) -> None:
    first_page = [room(n) for n in range(100)]  # always the same full page, total missing
    httpserver.expect_request("/api/v1/livechat/rooms").respond_with_json(
        {"rooms": first_page, "success": True}
    )
    client = api(httpserver, Clock())
    found = await client.livechat_rooms()
    await client.aclose()
    assert [r["_id"] for r in found] == [r["_id"] for r in first_page]
    assert len(httpserver.log) == 2  # the repeat is seen on the second page


async def test_an_answer_too_big_is_refused_unread(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omnihook.receiver.rest._MAX_ANSWER_BYTES", 10_000)
    httpserver.expect_request("/api/v1/livechat/visitors.info").respond_with_json(
        {"visitor": {"_id": "V1", "note": "x" * 20_000}, "success": True}
    )
    client = api(httpserver, Clock())
    with pytest.raises(RocketChatUnavailable, match=r"answer over 64 MiB .*after 3 attempts"):
        await client.visitor("V1")
    await client.aclose()


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # nested past any parser's depth
        "<html>502 Bad Gateway</html>",  # a proxy's page
        '["not", "an", "object"]',
    ],
    ids=["deep", "html", "array"],
)
async def test_an_answer_that_is_not_a_json_object_is_unavailable(
    httpserver: HTTPServer, body: str
) -> None:
    httpserver.expect_request("/api/v1/livechat/visitors.info").respond_with_data(
        body, content_type="application/json"
    )
    client = api(httpserver, Clock())
    with pytest.raises(RocketChatUnavailable, match=r"answered 200 to GET livechat/visitors"):
        await client.visitor("V1")
    await client.aclose()


async def test_ids_in_a_path_cannot_reach_another_endpoint(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/api/v1/livechat/visitors.pagesVisited/../users.list"
    ).respond_with_json({"pages": [], "total": 0, "success": True})
    client = api(httpserver, Clock())
    assert await client.pages_visited("../users.list") == []
    await client.aclose()
    request, _ = httpserver.log[0]
    # The id travels as one path segment: no proxy or router can resolve its "../".
    assert request.environ["REQUEST_URI"].startswith(
        "/api/v1/livechat/visitors.pagesVisited/..%2Fusers.list?"
    )
