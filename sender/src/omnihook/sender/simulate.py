"""Realistic chats, generated the way Rocket.Chat would emit them, and played at an endpoint.

>>> chats = Simulation(seed=7).chats(100)          # deterministic for a seed
>>> report = await play(chats, "http://127.0.0.1:8000/rocketchat", token="s3cret")  # doctest: +SKIP

A chat starts with the visitor's first message: Rocket.Chat creates the room (Chat Start, with no
message), then either assigns an agent at once (auto-assignment: Chat Taken, still with no
message) or queues the room (Chat Queued) until an agent takes it; then the message itself is
saved and sent. Chats then trade visitor and agent messages (some edited, some with a file or
UIKit blocks), are sometimes forwarded to another agent (a Chat Taken, then the Forwarded event)
or department (auto-assigned: Chat Taken then Forwarded; or into its queue: Forwarded then
Chat Queued, until someone takes it), sometimes capture a lead, and close by the agent (with a
comment) or the visitor; some are abandoned in the queue; some rooms are edited after close; a
few visitors leave an offline message instead. The records follow Rocket.Chat's order
(:mod:`omnihook.sender.chat`). Payloads evolve as Rocket.Chat's do: the history grows, ``servedBy`` appears once
taken, ``crmData`` echoes the endpoint's last 200 body for the room.

Playing can also keep a fake Rocket.Chat up to date (``rocketchat=``: each chat's records after
each step, as Rocket.Chat's REST API would show them) and lose webhooks on the way (``drops=``: a
seeded share, or every webhook due while the receiver is down), reporting exactly which::

    fake = FakeRocketChat(httpserver)
    report = await play(chats, url, rocketchat=fake,
                        drops=Drops(share=0.1, seed=3, down=(nine_fifteen, nine_thirty)))
    report.dropped        # [Dropped(room_id, number, label, type, at, reason, payload), ...]
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from random import Random
from typing import Any, Literal, Protocol

from omnihook.contracts.building import BuildSettings, RoomRecords

from .chat import (
    SITE_URL,
    AgentUser,
    ChatBuilder,
    Version,
    VisitorProfile,
    offline_message,
    random_id,
)
from .policy import RetryPolicy
from .sender import Delivery, Sender

__all__ = [
    "Dropped",
    "Drops",
    "RecordsSink",
    "SimulatedChat",
    "Simulation",
    "SimulationReport",
    "Step",
    "play",
]

_FIRST = ["Jane", "Omar", "Ana", "Li", "Fatima", "Lucas", "Mia", "Noah", "Aiko", "Mateo", "Zoe", "Ivan",
          "Priya", "Kwame", "Sofia", "Elif", "Tomás", "Hana", "Yusuf", "Grace"]  # fmt: skip
_LAST = ["Doe", "Haddad", "Silva", "Wei", "Khan", "Martin", "Rossi", "Okafor", "Tanaka", "García",
         "Novak", "Ivanova", "Patel", "Mensah", "Costa", "Yılmaz", "Müller", "Kim", "Dubois", "Smith"]  # fmt: skip
_DOMAINS = ["example.com", "example.org", "mail.example.net"]
_AGENTS = [AgentUser(random_id(Random(n)), u, name, f"{u}@support.example.com",
                     {"team": team, "employeeId": f"E-{100 + n}"})
           for n, (u, name, team) in enumerate([("agent.smith", "Agent Smith", "billing"), ("emma.brown", "Emma Brown", "shipping"),
                                                ("raj.iyer", "Raj Iyer", "tech"), ("lena.berg", "Lena Berg", "billing")])]  # fmt: skip
_AGENT_FIELDS = frozenset({"team"})  # Accounts_CustomFields marks only `team` sendToIntegrations
_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
]
_PAGES = [("Pricing", "https://shop.example.com/pricing"), ("Order status", "https://shop.example.com/orders"),
          ("Shipping", "https://shop.example.com/help/shipping"), ("Returns", "https://shop.example.com/help/returns")]  # fmt: skip
_DEPARTMENTS = [random_id(Random(100 + n)) for n in range(3)]
_TAGS = ["billing", "shipping", "refund", "vip", "bug", "sales", "feedback"]
_VISITOR_LINES = [
    "Hi, my order has not arrived yet.", "Can I change my delivery address?", "The app crashes on login.",
    "Do you ship to Canada?", "I was charged twice this month.", "How do I reset my password?",
    "Thanks, that helps!", "Is there a discount for students?", "It still does not work.",
    "Great, thank you very much.", "Could you check order {order}?", "When will it be back in stock?",
]  # fmt: skip
_AGENT_LINES = [
    "Hello! Let me check that for you.", "Could you give me your order number?", "I have refunded the duplicate charge.",
    "It ships tomorrow morning.", "I have sent you a reset link.", "Is there anything else I can do?",
    "I am forwarding you to a colleague who knows this best.", "Sorry for the wait.",
]  # fmt: skip
_CLOSING = [
    "Resolved, have a nice day!",
    "Refund issued.",
    "Escalated to engineering.",
    "Tracking number sent.",
]
_OFFLINE = [
    "Please call me back tomorrow.",
    "Do you ship to Canada?",
    "I would like a quote for 20 seats.",
]


@dataclass(frozen=True)
class Step:
    """One webhook of a chat: what happened, and how to build its payload (at send time, so that
    ``crmData`` is what the endpoint answered last)."""

    label: str
    build: Callable[[], dict[str, Any]]


@dataclass
class SimulatedChat:
    room_id: str | None
    """``None`` for an offline message."""
    steps: list[Step]
    builder: ChatBuilder | None = None
    key: str = ""
    """What tells the chat apart in a run: the room id, or ``offline:<index>``."""

    def payloads(self) -> list[dict[str, Any]]:
        """Every payload of the chat, built in order (without an endpoint's answers)."""
        return [step.build() for step in self.steps]

    def records(self) -> RoomRecords | None:
        """What Rocket.Chat holds about the chat so far (``None`` for an offline message, which
        leaves no record)."""
        return self.builder.records() if self.builder is not None else None


class Simulation:
    """Deterministic chats for a seed, in the shape of a Rocket.Chat ``version``.

    ``navigation``: the workspace sends navigation messages (both navigation settings on), and
    some visitors move between pages during their chat.
    """

    def __init__(
        self,
        seed: int = 0,
        version: Version = "current",
        start: datetime | None = None,
        *,
        navigation: bool = False,
    ) -> None:
        self.seed = seed
        self.version: Version = version
        self.start = start or datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
        self.navigation = navigation
        self.settings = BuildSettings(
            navigation_in_history=navigation, agent_custom_fields=_AGENT_FIELDS, site_url=SITE_URL
        )

    def chats(self, count: int) -> list[SimulatedChat]:
        return [self.chat(index) for index in range(count)]

    def chat(self, index: int) -> SimulatedChat:
        """Chat number ``index`` (the same for the same seed, whatever else was generated)."""
        rng = Random(f"{self.seed}:{index}")
        started = self.start + timedelta(seconds=index * 7 + rng.randint(0, 6))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = (
            f"{first}.{last}@{rng.choice(_DOMAINS)}".lower().replace(" ", "")
            if rng.random() < 0.8
            else None
        )
        if rng.random() < 0.08:
            text = rng.choice(_OFFLINE)
            return SimulatedChat(None, [Step("offline message", lambda: offline_message(
                f"{first} {last}", email or f"{first.lower()}@example.com", text, started))],
                key=f"offline:{index}")  # fmt: skip
        department = rng.choice(_DEPARTMENTS)
        order = f"A-{rng.randint(10000, 99999)}"
        visitor = VisitorProfile(
            id=random_id(rng), token=random_id(rng), username=f"guest-{rng.randint(1, 99999)}",
            name=f"{first} {last}" if rng.random() < 0.9 else None, email=email,
            phone=f"+1555{rng.randint(1000000, 9999999)}" if rng.random() < 0.5 else None, department=department,
            custom_fields={"plan": rng.choice(["free", "pro", "enterprise"]), "orderId": order} if rng.random() < 0.6 else {},
            user_agent=rng.choice(_USER_AGENTS), ip=f"203.0.113.{rng.randint(1, 254)}",
        )  # fmt: skip
        builder = ChatBuilder(
            random_id(rng), visitor, started_at=started, department_id=department, version=self.version, rng=rng,
            tags=rng.sample(_TAGS, rng.randint(0, 2)),
            custom_fields={"orderId": order} if rng.random() < 0.4 else None, settings=self.settings,
        )  # fmt: skip
        steps: list[Step] = []

        def add(label: str, build: Callable[[], dict[str, Any]]) -> None:
            steps.append(Step(label, build))

        def add_each(labels: tuple[str, ...], action: Callable[[], object]) -> None:
            """One action, one webhook per label (all built when it happens, as Rocket.Chat
            does, then sent in order)."""
            later: list[dict[str, Any]] = []

            def first_event() -> dict[str, Any]:
                action()
                first, *rest = builder.last_events
                assert len(rest) == len(labels) - 1, (labels, builder.last_events)
                later.extend(rest)
                return first

            add(labels[0], first_event)
            for label in labels[1:]:
                add(label, lambda: later.pop(0))

        said = 0

        def visitor_line() -> str:
            return rng.choice(_VISITOR_LINES).format(order=order)

        def navigate() -> dict[str, Any]:
            payload = builder.visitor_navigates(*rng.choice(_PAGES))
            assert payload is not None  # navigation messages are sent in this simulation
            return payload

        agent = rng.choice(_AGENTS)
        abandoned = rng.random() < 0.1
        auto = not abandoned and rng.random() < 0.5
        if auto:  # assigned as the room is created
            add_each(("start", "taken", "visitor message"),
                     lambda: builder.visitor_starts(visitor_line(), agent=agent))  # fmt: skip
        else:  # queued: manual selection, a waiting queue, no agent free
            add_each(("start", "queued", "visitor message"),
                     lambda: builder.visitor_starts(visitor_line()))  # fmt: skip
        if self.navigation and rng.random() < 0.4:
            for _ in range(rng.randint(1, 2)):
                add("navigation", navigate)

        if abandoned:
            add("visitor message", lambda: builder.visitor_says(visitor_line()))
            add("close", lambda: builder.close(by="visitor"))
            return SimulatedChat(builder.room_id, steps, builder, key=builder.room_id)
        if not auto:
            add("taken", lambda: builder.take(agent))
        for turn in range(rng.randint(3, 12)):
            if turn % 2 == 0:
                if rng.random() < 0.1:
                    file = {"_id": random_id(rng), "name": rng.choice(["receipt.pdf", "screenshot.png"]),
                            "type": "application/pdf", "size": rng.randint(1000, 90000)}  # fmt: skip
                    add("visitor file", partial(builder.visitor_says, None, file=file))
                else:
                    add("visitor message", lambda: builder.visitor_says(visitor_line()))
                said += 1
                if visitor.email is None and rng.random() < 0.3:
                    address = f"{first}.{last}@{rng.choice(_DOMAINS)}".lower()
                    add(
                        "visitor message",
                        partial(builder.visitor_says, f"My email is {address}"),
                    )
                    add("lead capture", builder.lead_capture)
            elif rng.random() < 0.05:
                blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "Rate this chat"}},
                          {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "👍"}}]}]  # fmt: skip
                add("agent blocks", partial(builder.agent_says, None, blocks=blocks))
            else:
                add("agent message", lambda: builder.agent_says(rng.choice(_AGENT_LINES)))
            if said and rng.random() < 0.1:
                add(
                    "edited message", lambda: builder.edit_message(-1, "(edited) " + visitor_line())
                )
            if turn == 3 and rng.random() < 0.2:
                colleague = rng.choice([a for a in _AGENTS if a != agent])
                target = rng.choice([d for d in _DEPARTMENTS if d != department])
                way = rng.random()
                if way < 0.5:
                    add_each(("taken", "forwarded to agent"),
                             partial(builder.forward_to_agent, colleague))  # fmt: skip
                elif way < 0.75:  # the department assigns an agent at once
                    add_each(("taken", "forwarded to department"),
                             partial(builder.forward_to_department, target, colleague))  # fmt: skip
                else:  # into the department's queue, until someone takes it
                    add_each(("forwarded to department", "queued"),
                             partial(builder.forward_to_department, target))  # fmt: skip
                    add("taken", lambda: builder.take(rng.choice(_AGENTS)))
        if rng.random() < 0.7:
            add("close", lambda: builder.close(by="agent", comment=rng.choice(_CLOSING)))
        else:
            add("close", lambda: builder.close(by="visitor"))
        if rng.random() < 0.15:
            add(
                "edit after close",
                lambda: builder.edit_after_close(tags=[*builder.tags, "followed-up"]),
            )
        return SimulatedChat(builder.room_id, steps, builder, key=builder.room_id)


@dataclass(frozen=True)
class Drops:
    """Which webhooks never reach the endpoint: a seeded ``share`` of them at random, and every
    webhook due while the receiver is ``down`` (``(start, end)`` in Rocket.Chat's time, the time
    of the simulated chats; the end excluded). The same seed drops the same webhooks, whatever
    the concurrency. A dropped webhook is not posted at all, as when Rocket.Chat's retries ran
    out or were lost in a restart, so the room keeps its crmData."""

    share: float = 0.0
    seed: int = 0
    down: tuple[datetime, datetime] | None = None

    def reason(self, chat_key: str, number: int, at: datetime) -> Literal["down", "share"] | None:
        """Why webhook ``number`` (from 0) of chat ``chat_key``, due at ``at``, is dropped."""
        if self.down is not None and self.down[0] <= at < self.down[1]:
            return "down"
        if self.share > 0 and Random(f"{self.seed}:{chat_key}:{number}").random() < self.share:
            return "share"
        return None


@dataclass(frozen=True)
class Dropped:
    """A webhook Rocket.Chat sent that never reached the endpoint."""

    room_id: str | None
    number: int
    """Its place among the chat's webhooks (from 0): ``chat.payloads()[number]`` without answers."""
    label: str
    """The step (``"taken"``, ``"visitor message"``…)."""
    type: str
    at: datetime
    """When it was due, in Rocket.Chat's time."""
    reason: Literal["down", "share"]
    payload: dict[str, Any]


class RecordsSink(Protocol):
    """Where ``play`` keeps each chat's records (a :class:`FakeRocketChat`)."""

    def add_records(self, records: RoomRecords) -> None: ...


@dataclass
class SimulationReport:
    """What a simulation run did and what the endpoint answered."""

    chats: int = 0
    events: int = 0
    """Webhooks posted (dropped ones are not)."""
    ok: int = 0
    retries: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    dropped: list[Dropped] = field(default_factory=list)
    """Every webhook dropped on purpose (``drops=``), in the order they were due per chat."""

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def record(self, delivery: Delivery) -> None:
        self.events += 1
        self.retries += delivery.attempts - 1
        self.latencies_ms += [attempt.elapsed * 1000 for attempt in delivery.history]
        if delivery.ok:
            self.ok += 1
        else:
            last = delivery.history[-1]
            reason = f"HTTP {last.status}" if last.status is not None else (
                "timeout" if "no answer" in (last.error or "") else "network error")  # fmt: skip
            self.failures[reason] += 1


class _Pace:
    """At most ``rate`` starts per second, shared by every chat."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def play(
    chats: list[SimulatedChat],
    url: str,
    *,
    token: str | None = None,
    concurrency: int = 16,
    rate: float | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
    on_delivery: Callable[[Step, Delivery], None] | None = None,
    rocketchat: RecordsSink | None = None,
    drops: Drops | None = None,
) -> SimulationReport:
    """Play ``chats`` at ``url``: ``concurrency`` chats at once, each chat's events in order,
    at most ``rate`` events per second overall; each room's 200 body comes back as crmData.

    ``rocketchat``: after each step, the chat's records go there (``add_records``), whether its
    webhook is delivered or dropped, and again once an answer became the room's crmData; offline
    messages leave none. ``drops``: which webhooks are
    lost on the way (listed in ``report.dropped``)."""
    report = SimulationReport(chats=len(chats))
    pace = _Pace(rate)
    queue: asyncio.Queue[SimulatedChat] = asyncio.Queue()
    for chat in chats:
        queue.put_nowait(chat)
    started = time.perf_counter()
    async with Sender(url, token=token, timeout=timeout, policy=policy or RetryPolicy.rocketchat(),
                      max_connections=max(concurrency, 1)) as sender:  # fmt: skip

        async def worker() -> None:
            while not queue.empty():
                chat = queue.get_nowait()
                for number, step in enumerate(chat.steps):
                    payload = step.build()
                    if rocketchat is not None and chat.builder is not None:
                        rocketchat.add_records(chat.builder.records())  # before the webhook leaves
                    at = _due(chat, payload)
                    reason = (
                        drops.reason(chat.key or str(chat.room_id), number, at) if drops else None
                    )
                    if reason is not None:
                        report.dropped.append(Dropped(chat.room_id, number, step.label, str(payload.get("type")),
                                                      at, reason, payload))  # fmt: skip
                        continue
                    await pace.wait()
                    delivery = await sender.send(payload)
                    report.record(delivery)
                    if delivery.ok and chat.builder is not None:
                        chat.builder.crm_data = delivery.response_text
                        if rocketchat is not None:  # the room keeps the answer as crmData
                            rocketchat.add_records(chat.builder.records())
                    if on_delivery is not None:
                        on_delivery(step, delivery)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(chats))))))
    report.seconds = time.perf_counter() - started
    return report


def _due(chat: SimulatedChat, payload: dict[str, Any]) -> datetime:
    """When Rocket.Chat sent this webhook: when the chat built it, or the offline form's
    ``sentAt``."""
    if chat.builder is not None:
        return chat.builder.moment_of(payload)
    return datetime.fromisoformat(str(payload["sentAt"]))
