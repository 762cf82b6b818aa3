"""The console's pages: server-rendered, a little JavaScript shipped with the package, nothing
fetched from elsewhere (it works on a closed network).

>>> app = create_console(store, ConsoleAuth(read_password()))     # doctest: +SKIP
>>> outer.mount("/console", app)                                    # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from omnihook.store import EVENT_STATUSES, EventQuery, Store, StoreError

from ..ops.status import read_status
from .auth import COOKIE, ConsoleAuth, Session
from .views import chat_row, event_view, transcript

__all__ = ["create_console"]

logger = logging.getLogger("omnihook.console")
HERE = Path(__file__).parent
PAGE = 50
Handler = Callable[[Request, Session], Awaitable[Response]]


def create_console(
    store: Store,
    auth: ConsoleAuth,
    *,
    live_every: float = 1.0,
    stream_seconds: float = 15.0,
    record_urls: Mapping[str, Mapping[str, str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The console as an ASGI app, to mount at a path of your choice (``serve --console``:
    ``/console``). Every page and stream needs a session; every action a CSRF token.
    ``record_urls``: per adapter, per id it keeps, the URL of the CRM record with ``{id}`` (the
    bridge file's ``record_urls``), so a chat's page links to its records."""
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(default=True))  # fmt: skip
    templates.filters["when"] = _when
    templates.filters["pretty"] = _pretty

    def render(request: Request, session: Session | None, name: str, code: int = 200,
               **values: Any) -> HTMLResponse:  # fmt: skip
        base = request.scope.get("root_path", "")
        html = templates.get_template(name).render(
            base=base, session=session, page=name.removesuffix(".html"), **values
        )
        return HTMLResponse(html, status_code=code, headers=_SECURITY_HEADERS)

    def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = auth.session(request.cookies.get(COOKIE))
            if session is None:
                if request.headers.get("accept", "").startswith("text/event-stream"):
                    return Response("sign in first", status_code=401)
                return RedirectResponse(f"{request.scope.get('root_path', '')}/login", 303)
            if request.method == "POST":
                form = request.state.form = await _form(request)
                if not auth.csrf_ok(session, form.get("csrf")):
                    logger.warning("console: a %s to %s without a valid CSRF token refused",
                                   request.method, request.url.path)  # fmt: skip
                    return render(request, session, "error.html", 403,
                                  message="This form has expired (no valid CSRF token). Go back, reload and try again.")  # fmt: skip
            try:
                await store.connect()  # no-op once open
                return await handler(request, session)
            except StoreError as exc:
                logger.error("console: the store failed: %s", exc)
                return render(request, session, "error.html", 503,
                              message=f"The store cannot be read right now: {exc}")  # fmt: skip

        return endpoint

    async def login_page(request: Request) -> Response:
        return render(request, None, "login.html")

    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        wait = auth.throttle.wait(client)
        if wait > 0:
            slowed = render(request, None, "login.html", 429,
                            error=f"Too many failed attempts: wait {wait:.0f} s.")  # fmt: skip
            slowed.headers["Retry-After"] = str(int(wait) + 1)
            return slowed
        form = await _form(request)
        session = auth.login(form.get("name", ""), form.get("password", ""))
        if session is None:
            auth.throttle.failed(client)
            logger.warning("console: failed sign-in from %s", client)
            return render(request, None, "login.html", 401, error="Wrong password.")
        auth.throttle.succeeded(client)
        logger.info("console: %s signed in from %s", session.name, client)
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/", 303)
        response.set_cookie(COOKIE, session.id, max_age=int(auth.ttl), path=f"{base}/" if base else "/",
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
        return response

    async def logout(request: Request, session: Session) -> Response:
        auth.logout(session)
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/login", 303)
        response.delete_cookie(COOKIE, path=f"{base}/" if base else "/")
        return response

    async def overview(request: Request, session: Session) -> Response:
        now = clock()
        status = await read_status(store, now)
        hours = await store.events.received_per_hour(now - 24 * 3600, now)
        return render(request, session, "overview.html", data=status.as_dict(),
                      hours=hours, peak=max([n for _, n in hours] + [1]))  # fmt: skip

    async def chats(request: Request, session: Session) -> Response:
        before = _float(request.query_params.get("before"))
        rooms = await store.events.rooms(PAGE, before)
        rows = [chat_row(room) for room in rooms]
        more = rooms[-1].updated_at if len(rooms) == PAGE else None
        return render(request, session, "chats.html", rows=rows, more=more)

    async def chat(request: Request, session: Session) -> Response:
        room_id = request.path_params["room_id"]
        found = await store.events.search(EventQuery(room_id=room_id, limit=500))
        events = [event_view(e) for e in reversed(found)]
        links = {
            adapter: {name: (value, _record_url(record_urls, adapter, name, value))
                      for name, value in ids.items()}
            for adapter, ids in (await store.crm_links.for_key(room_id)).items()
        }  # fmt: skip
        return render(request, session, "chat.html", room_id=room_id, events=events,
                      transcript=transcript(found), links=links)  # fmt: skip

    async def events(request: Request, session: Session) -> Response:
        params = request.query_params
        query = EventQuery(
            status=params.get("status") or None,  # type: ignore[arg-type]
            type=params.get("type") or None, room_id=params.get("room") or None,
            since=_moment(params.get("since")), until=_moment(params.get("until")),
            text=params.get("text") or None, before_id=_int(params.get("before")), limit=PAGE,
        )  # fmt: skip
        if query.status is not None and query.status not in EVENT_STATUSES:
            return render(
                request, session, "error.html", 400, message=f"unknown status {query.status!r}"
            )
        found = await store.events.search(query)
        kept = {k: v for k, v in params.items() if k != "before" and v}
        more = f"?{urlencode({**kept, 'before': found[-1].id})}" if len(found) == PAGE else None
        dead = (await store.events.backlog()).counts.get("dead", 0)
        return render(request, session, "events.html", events=[event_view(e) for e in found],
                      params=params, statuses=EVENT_STATUSES, more=more, dead=dead)  # fmt: skip

    async def event(request: Request, session: Session) -> Response:
        event_id = int(request.path_params["event_id"])
        stored = await store.events.get(event_id)
        if stored is None:
            return render(request, session, "error.html", 404, message=f"no event {event_id}")
        attempts = await store.events.attempts(event_id)
        return render(request, session, "event.html", event=event_view(stored), attempts=attempts,
                      done=request.query_params.get("done"))  # fmt: skip

    async def replay(request: Request, session: Session) -> Response:
        event_id = int(request.path_params["event_id"])
        result = await store.events.replay([event_id], clock(), all_handlers=True)
        logger.info("console: %s replayed event %d (%s)", session.name, event_id, _client(request))
        done = "replayed" if result.replayed else "not replayed"
        return RedirectResponse(
            f"{request.scope.get('root_path', '')}/events/{event_id}?done={done}", 303
        )

    async def replay_dead(request: Request, session: Session) -> Response:
        dead = (await store.events.backlog()).counts.get("dead", 0)
        if request.method == "GET":
            return render(request, session, "replay_dead.html", dead=dead)
        form: dict[str, str] = request.state.form  # read by signed_in
        if _int(form.get("count")) != dead:
            return render(request, session, "replay_dead.html", 409, dead=dead,
                          error="The number of dead events changed meanwhile: check it and confirm again.")  # fmt: skip
        result = await store.events.replay(None, clock())
        logger.info("console: %s replayed %d dead event(s) (%s)", session.name,
                    len(result.replayed), _client(request))  # fmt: skip
        return RedirectResponse(f"{request.scope.get('root_path', '')}/events?status=pending", 303)

    async def outbox(request: Request, session: Session) -> Response:
        status = request.query_params.get("status") or None
        entries = await store.outbox.find(status=status, limit=PAGE)  # type: ignore[arg-type]
        return render(request, session, "outbox.html", entries=entries, status=status,
                      backlog=await store.outbox.backlog())  # fmt: skip

    async def delivery(request: Request, session: Session) -> Response:
        entry_id = int(request.path_params["entry_id"])
        entry = await store.outbox.get(entry_id)
        if entry is None:
            return render(
                request, session, "error.html", 404, message=f"no outbox delivery {entry_id}"
            )
        return render(request, session, "delivery.html", entry=entry,
                      attempts=await store.outbox.attempts(entry_id))  # fmt: skip

    async def outbox_retry(request: Request, session: Session) -> Response:
        entry_id = int(request.path_params["entry_id"])
        await store.outbox.retry([entry_id], clock())
        logger.info(
            "console: %s retried outbox delivery %d (%s)", session.name, entry_id, _client(request)
        )
        return RedirectResponse(f"{request.scope.get('root_path', '')}/outbox", 303)

    async def outbox_purge(request: Request, session: Session) -> Response:
        form: dict[str, str] = request.state.form  # read by signed_in
        days = _float(form.get("days")) or 7.0
        purged = await store.outbox.purge(("done", "dead"), clock() - days * 86400)
        logger.info("console: %s purged %d outbox delivery(ies) older than %g days (%s)",
                    session.name, purged, days, _client(request))  # fmt: skip
        return RedirectResponse(f"{request.scope.get('root_path', '')}/outbox", 303)

    async def live(request: Request, session: Session) -> Response:
        return render(request, session, "live.html")

    async def live_stream(request: Request, session: Session) -> Response:
        # A stream lasts ``stream_seconds``, then the browser reconnects (EventSource does, with
        # Last-Event-ID): a server shutting down never waits long for an open Live page.
        after = _int(request.headers.get("last-event-id")) or _int(
            request.query_params.get("after")
        )
        if after is None:
            latest = await store.events.search(EventQuery(limit=1))
            after = latest[0].id if latest else 0
        ends = time.monotonic() + stream_seconds

        async def stream() -> AsyncIterator[str]:
            nonlocal after
            yield f"retry: 1000\nid: {after}\n\n"
            quiet_since = time.monotonic()
            while time.monotonic() < ends and auth.session(session.id) is not None:
                found = await store.events.search(EventQuery(after_id=after, limit=100))
                for event in found:
                    after = event.id
                    data = json.dumps(event_view(event).live())
                    yield f"id: {event.id}\nevent: event\ndata: {data}\n\n"
                if found:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 10:
                    quiet_since = time.monotonic()
                    yield ": waiting\n\n"  # keeps proxies from closing an idle stream
                await asyncio.sleep(live_every)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", signed_in(logout), methods=["POST"]),
        Route("/", signed_in(overview)),
        Route("/chats", signed_in(chats)),
        Route("/chats/{room_id:path}", signed_in(chat)),
        Route("/events", signed_in(events)),
        Route("/events/replay-dead", signed_in(replay_dead), methods=["GET", "POST"]),
        Route("/events/{event_id:int}", signed_in(event)),
        Route("/events/{event_id:int}/replay", signed_in(replay), methods=["POST"]),
        Route("/outbox", signed_in(outbox)),
        Route("/outbox/{entry_id:int}", signed_in(delivery)),
        Route("/outbox/{entry_id:int}/retry", signed_in(outbox_retry), methods=["POST"]),
        Route("/outbox/purge", signed_in(outbox_purge), methods=["POST"]),
        Route("/live", signed_in(live)),
        Route("/live/stream", signed_in(live_stream)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _record_url(
    templates: Mapping[str, Mapping[str, str]] | None, adapter: str, name: str, value: Any
) -> str | None:
    """The CRM record's URL, when the bridge file gives one for this adapter and id, and the id
    is a plain value (nothing that could break out of the URL)."""
    template = (templates or {}).get(adapter, {}).get(name)
    if template is None or not isinstance(value, str | int) or isinstance(value, bool):
        return None
    return template.replace("{id}", quote(str(value), safe=""))


_MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the console's forms), at most 64 KiB;
    a field given twice keeps its first value."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            return {}
        chunks.append(chunk)
    fields = parse_qs(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _moment(value: str | None) -> float | None:
    """A ``datetime-local`` field's value (UTC) as Unix time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _when(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(body: bytes | str | None) -> str:
    if body is None:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body
