"""A bridge under test: adapters registered on a router, a store, the app and a worker whose
clock the test moves."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnihook.contracts import samples
from omnihook.receiver import TOKEN_HEADER, HandlingPolicy, Router, Worker, create_app
from omnihook.receiver.crm import CrmAdapter
from omnihook.store import Store, StoredEvent


class Bridge:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.router = Router()
        self.now = time.time() + 1
        policy = HandlingPolicy(attempts=4, initial_delay=5, jitter=0, handler_timeout=10)
        self.worker = Worker(store, self.router, policy=policy, clock=lambda: self.now)
        self.app = create_app(self.router, tokens=["t"], store=store, run_worker=False)

    def add(self, adapter: CrmAdapter) -> CrmAdapter:
        adapter.register(self.router)
        return adapter

    async def deliver(self, *documents: dict[str, Any]) -> list[dict[str, Any]]:
        """Post each document as Rocket.Chat would, handle it, return the answers."""
        answers = []
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            for document in documents:
                response = await client.post(
                    "/rocketchat", content=json.dumps(document), headers={TOKEN_HEADER: "t"}
                )
                assert response.status_code == 200, response.text
                answers.append(response.json())
                await self.worker.drain()
        return answers

    async def later(self, seconds: float) -> None:
        self.now += seconds
        await self.worker.drain()

    async def events(self) -> list[StoredEvent]:
        return list(reversed(await self.store.events.find(limit=100)))


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    async with Store.open(f"sqlite:///{tmp_path / 'bridge.db'}") as store:
        bridge = Bridge(store)
        yield bridge
        await bridge.router.aclose()


def chat(*names: str, without_crm_data: bool = True) -> list[dict[str, Any]]:
    documents = [samples.sample(name) for name in names]
    if without_crm_data:
        for document in documents:
            document.pop("crmData", None)
    return documents
