"""Fixtures shared by every test: loopback servers and payload helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import pytest
import uvicorn
from pytest_httpserver import HTTPServer

pytest_plugins = ["pytester"]  # the contract-testing kit is tested the way users run it


@pytest.fixture(autouse=True)
def _registered_secrets_per_test() -> Iterator[None]:
    """Secrets are registered process-wide (a token masks itself in every log line): each test
    starts from the secrets registered before it and leaves none behind."""
    from omnihook.store import redaction

    before = redaction._SECRETS.snapshot()
    yield
    redaction._SECRETS.restore(before)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    # IPv4 loopback, so clients never wait on an IPv6 attempt for "localhost".
    return ("127.0.0.1", 0)


@pytest.fixture
def threaded_httpserver() -> Iterator[HTTPServer]:
    """A pytest-httpserver answering each request in its own thread (for slow handlers)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class UvicornThread:
    """A real uvicorn server for an ASGI app, on a free loopback port, in a background thread;
    or, given a ``config``, the server and event loop that config says."""

    def __init__(self, app: Any, config: uvicorn.Config | None = None) -> None:
        if config is None:
            config = uvicorn.Config(
                app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off"
            )
            self.loop_factory = None
        else:
            self.loop_factory = config.get_loop_factory()
        self.port = config.port
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            runner.run(self.server.serve())

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve_app() -> Iterator[Any]:
    """Start uvicorn for an app: ``url = serve_app(app).url``; stopped after the test."""
    running: list[UvicornThread] = []

    def start(app: Any) -> UvicornThread:
        server = UvicornThread(app).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """Each test that takes it runs twice: on a fresh SQLite file and on a fresh PostgreSQL schema."""
    from .store_urls import fresh_store_url

    with fresh_store_url(request.param, tmp_path) as url:
        yield url
