"""Payload shapes seen in the wild, beside the canonical samples (see the reference, §2)."""

from __future__ import annotations

from typing import Any

from omnihook.contracts import samples


def _close() -> dict[str, Any]:
    return samples.sample("chat-close")


def current_emails() -> dict[str, Any]:
    return _close()


def older_null_contacts() -> dict[str, Any]:
    """Older versions: email and phone always present, null when empty."""
    doc = _close()
    doc["visitor"]["email"] = None
    doc["visitor"]["phone"] = None
    return doc


def absent_contacts() -> dict[str, Any]:
    """Current versions with no email or phone: the keys are absent."""
    doc = _close()
    del doc["visitor"]["email"]
    del doc["visitor"]["phone"]
    return doc


def string_contacts() -> dict[str, Any]:
    doc = _close()
    doc["visitor"]["email"] = "jane@example.com"
    doc["visitor"]["phone"] = "+15551234"
    return doc


def public_docs_form() -> dict[str, Any]:
    """The public docs' samples: email list, phone null, messages without rid/_updatedAt."""
    doc = _close()
    doc["visitor"]["phone"] = None
    for message in doc["messages"]:
        message.pop("rid", None)
        message.pop("_updatedAt", None)
    return doc


def crm_data_object() -> dict[str, Any]:
    """Older versions stored the endpoint's answer as an object."""
    doc = _close()
    doc["crmData"] = {"contactId": "crm-7731", "nested": {"a": [1, 2]}}
    return doc


def crm_data_plain_text() -> dict[str, Any]:
    doc = _close()
    doc["crmData"] = "OK"
    return doc


def closing_message_false_everywhere() -> dict[str, Any]:
    """One old version sent closingMessage: false on every message."""
    doc = _close()
    for message in doc["messages"]:
        message["closingMessage"] = message.get("closingMessage", False)
    return doc


def blocks_message() -> dict[str, Any]:
    """A message with only blocks: msg is the JSON of the blocks (issue #27052)."""
    doc = samples.sample("agent-message")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Pick a *time*"}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "10:00"}}],
        },
    ]
    message = doc["messages"][0]
    message["msg"] = (
        '[{"type":"section","text":{"type":"mrkdwn","text":"Pick a *time*"}},'
        '{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"10:00"}}]}]'
    )
    message["blocks"] = blocks
    return doc


def navigation_message() -> dict[str, Any]:
    """A navigation-history message as Rocket.Chat writes it: ``savePageHistory`` saves a
    ``livechat_navigation_history`` message by the ``rocket.cat`` user, with ``"<title> - <url>"``
    as text and ``navigation: {page: pageInfo, token}``; ``sendToCRM`` gives it ``agentId``
    because its author is not the visitor."""
    doc = samples.sample("visitor-message")
    visited = doc["messages"][0]
    doc["messages"][0] = {
        "u": {"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat"},
        "_id": "nAv001kQz7RpL2mXw",
        "username": "rocket.cat",
        "msg": "Pricing - https://shop.example.com/pricing",
        "ts": visited["ts"],
        "rid": visited["rid"],
        "agentId": "rocket.cat",
        "navigation": {
            "page": {
                "change": "url",
                "title": "Pricing",
                "location": {"href": "https://shop.example.com/pricing"},
            },
            "token": doc["visitor"]["token"],
        },
        "_updatedAt": visited["ts"],
    }
    return doc


def agent_email_array() -> dict[str, Any]:
    """Rocket.Chat 0.6x sent the agent's own ``emails`` array (``postData.agent.email =
    agent.emails``)."""
    doc = _close()
    doc["agent"]["email"] = [
        {"address": "emma@support.example.com", "verified": True},
        {"address": "emma.brown@example.org", "verified": False},
    ]
    return doc


def agent_email_null() -> dict[str, Any]:
    """Older versions: ``agent.email`` always present, null when the agent has none."""
    doc = _close()
    doc["agent"]["email"] = None
    return doc


def close_without_comment() -> dict[str, Any]:
    """A close with no comment: the closing message has no msg."""
    doc = _close()
    del doc["messages"][-1]["msg"]
    return doc


def forwarded_to_department() -> dict[str, Any]:
    doc = samples.sample("chat-forwarded")
    del doc["oldServedBy"]
    doc["oldDepartmentId"] = "s4L3sD3ptMn8Vb2Q"
    return doc


def closed_by_bot() -> dict[str, Any]:
    doc = _close()
    doc["closer"] = "bot"
    return doc


def unknown_fields_everywhere() -> dict[str, Any]:
    """A newer Rocket.Chat's additions at every level must survive a round trip."""
    doc = _close()
    doc["source"] = {"type": "widget", "alias": "web"}
    doc["visitor"]["activity"] = ["2025-03"]
    doc["messages"][0]["reactions"] = {":+1:": {"usernames": ["agent.smith"]}}
    doc["agent"]["status"] = "online"
    doc["messages"][0]["u"]["avatarETag"] = "x1"
    return doc


def minimal_room() -> dict[str, Any]:
    """Only what every room event always carries."""
    return {
        "_id": "R9",
        "createdAt": "2025-01-01T10:00:00.000Z",
        "visitor": {"_id": "V9", "token": "t9", "username": "guest-9"},
        "type": "LivechatSessionStart",
        "messages": [],
    }


WILD_FORMS = {
    "current_emails": current_emails,
    "older_null_contacts": older_null_contacts,
    "absent_contacts": absent_contacts,
    "string_contacts": string_contacts,
    "public_docs_form": public_docs_form,
    "crm_data_object": crm_data_object,
    "crm_data_plain_text": crm_data_plain_text,
    "closing_message_false_everywhere": closing_message_false_everywhere,
    "blocks_message": blocks_message,
    "navigation_message": navigation_message,
    "agent_email_array": agent_email_array,
    "agent_email_null": agent_email_null,
    "close_without_comment": close_without_comment,
    "forwarded_to_department": forwarded_to_department,
    "closed_by_bot": closed_by_bot,
    "unknown_fields_everywhere": unknown_fields_everywhere,
    "minimal_room": minimal_room,
}
