"""What every adapter shares: names, people, transcripts; and the code example."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from omnihook.contracts import parse_event, samples
from omnihook.receiver.crm import person_of, split_name, transcript_text

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("name", "fallback", "expected"),
    [
        ("Jane Doe", None, ("Jane", "Doe")),
        ("Jane van  der Berg", None, ("Jane", "van der Berg")),
        ("Cher", None, ("", "Cher")),
        (None, "guest-12", ("", "guest-12")),
        ("  ", None, ("", "[unknown]")),
    ],
)
def test_names_split_at_the_first_space_and_always_have_a_last_name(
    name: str | None, fallback: str | None, expected: tuple[str, str]
) -> None:
    assert split_name(name, fallback) == expected


def test_a_person_merges_visitor_and_room_custom_fields() -> None:
    document = samples.sample("chat-start")
    document["customFields"] = {"orderId": "room-order", "channel": "web"}
    person = person_of(parse_event(document))
    assert person is not None
    assert person.custom_fields == {"plan": "pro", "orderId": "room-order", "channel": "web"}
    assert (person.email, person.phone, person.key) == (
        "jane.doe@example.com",
        "+15551234567",
        "5xRbK8TfWq3pLmN2v",
    )
    assert person.department == "sUpp0rtD3ptKq1Lw"


def test_offline_visitors_are_keyed_by_email_and_the_send_test_is_nobody() -> None:
    offline = person_of(parse_event(samples.sample("offline-message")))
    assert offline is not None
    assert (offline.key, offline.first_name, offline.last_name) == (
        "email:omar.haddad@example.org",
        "Omar",
        "Haddad",
    )
    assert person_of(parse_event(samples.send_test_sample())) is None


def test_transcripts_are_cut_to_the_limit_and_keep_the_link() -> None:
    event = parse_event(samples.sample("chat-close"))
    url = "https://chat.example.com/c/{room_id}"
    full = transcript_text(event, 100_000, url)
    assert full.startswith(
        "Rocket.Chat conversation hX4Lq2rNwPZ8Kc7Ry (closed by user)\nTags: shipping, vip\n\n"
    )
    assert full.endswith("\n\nhttps://chat.example.com/c/hX4Lq2rNwPZ8Kc7Ry")
    cut = transcript_text(event, 200, url)
    assert len(cut) == 200
    assert "[… transcript truncated]" in cut
    assert cut.endswith("https://chat.example.com/c/hX4Lq2rNwPZ8Kc7Ry")


def test_the_code_example_combines_an_adapter_and_a_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-example")
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("examples.bridge_code", None)
    module = importlib.import_module("examples.bridge_code")
    names = module.router.handlers_for(parse_event(samples.sample("chat-close")))
    assert names == ["crm:hubspot", "flag_unhappy_chats"]
