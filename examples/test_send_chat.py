"""Testing a sender with the kit's `webhook_sink` fixture: here examples/send_chat.py."""

from send_chat import play  # your code that posts webhooks

from omnihook.contracts import EventType


async def test_send_chat_speaks_rocketchat(webhook_sink):
    webhook_sink.token = "s3cret"  # the token the sender must present
    webhook_sink.respond(200, '{"contactId":"c-1"}')  # what the sink answers
    assert await play(webhook_sink.url, "s3cret")
    webhook_sink.assert_valid()  # else e.g. "delivery 2 (...): messages[1].ts: not a Rocket.Chat date"
    events = webhook_sink.events()
    assert events[0].event_type is EventType.CHAT_START
    assert events[-1].event_type is EventType.CHAT_CLOSE
    assert events[-1].parsed_crm_data() == {"contactId": "c-1"}  # echoed like Rocket.Chat does
