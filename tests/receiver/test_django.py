"""Django: the async view answering as omnihook does (Django's test client, no CSRF check on it),
inline and with a store handled by ``manage.py omnihook_worker``; ``omnihook_events``; a real ASGI
run of Django's application (no runserver)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import django
import httpx
import pytest
from django.conf import settings

from omnihook.contracts import TOKEN_HEADER, samples

from ..conftest import UvicornThread

TOKEN = "django-token"
ROOT = Path(__file__).resolve().parents[2]

if not settings.configured:  # one Django configuration for this process's tests
    settings.configure(
        DEBUG=False, SECRET_KEY="tests", ALLOWED_HOSTS=["*"], ROOT_URLCONF="tests.receiver.django_site.urls",
        INSTALLED_APPS=["omnihook.receiver.django"],
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],  # the view must be exempt
        OMNIHOOK={"ROUTER": "tests.receiver.django_site.hooks:router", "TOKENS": [TOKEN]},
    )  # fmt: skip
    django.setup()


def close_body(room: str = "hX4Lq2rNwPZ8Kc7Ry") -> bytes:
    document = samples.sample("chat-close")
    document["_id"] = room
    return json.dumps(document).encode()


def test_the_view_answers_as_omnihook_does_inline() -> None:
    from django.test import Client

    from tests.receiver.django_site.hooks import closed

    client = Client(enforce_csrf_checks=True)
    answer = client.post("/rocketchat", data=close_body("R-inline"), content_type="application/json",
                         headers={TOKEN_HEADER: TOKEN})  # fmt: skip
    assert answer.status_code == 200
    assert json.loads(answer.content)["archived"] == "R-inline"
    assert "R-inline" in closed
    refused = client.post("/rocketchat", data=close_body(), content_type="application/json")
    assert (refused.status_code, json.loads(refused.content)["error"]) == (401, "missing_token")
    broken = client.post("/rocketchat", data=b"{nope", content_type="application/json",
                         headers={TOKEN_HEADER: TOKEN})  # fmt: skip
    assert (broken.status_code, json.loads(broken.content)["error"]) == (400, "invalid_json")


def test_a_real_asgi_run_of_djangos_application() -> None:
    from django.core.asgi import get_asgi_application

    with UvicornThread(get_asgi_application()) as server:
        answer = httpx.post(f"{server.url}/rocketchat", content=close_body("R-asgi"),
                            headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["archived"] == "R-asgi"


def test_the_store_mode_and_the_manage_py_commands(tmp_path: Path) -> None:
    """A site whose settings name a store: the view stores, omnihook_worker handles,
    omnihook_events lists, as processes (manage.py as a Django project would run it)."""
    store = f"sqlite:///{tmp_path / 'omnihook.db'}"
    manage = tmp_path / "manage.py"
    manage.write_text(
        "import sys\nfrom django.conf import settings\nimport django\n"
        f"settings.configure(SECRET_KEY='x', INSTALLED_APPS=['omnihook.receiver.django'], "
        f"OMNIHOOK={{'ROUTER': 'tests.receiver.django_site.hooks:router', 'TOKENS': ['{TOKEN}'], "
        f"'STORE': '{store}'}})\n"
        "django.setup()\nfrom django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    async def deliver() -> Any:
        from django.test import AsyncRequestFactory

        from omnihook.receiver.django import rocketchat_view
        from tests.receiver.django_site.hooks import router

        view = rocketchat_view(router, [TOKEN], store=store)
        request = AsyncRequestFactory().post("/rocketchat", data=close_body("R-stored"),
                                             content_type="application/json",
                                             headers={TOKEN_HEADER: TOKEN})  # fmt: skip
        return await view(request)

    import asyncio

    answer = asyncio.run(deliver())
    assert answer.status_code == 200
    listed = subprocess.run([sys.executable, str(manage), "omnihook_events", "list", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["room_id"], row["status"]) == ("R-stored", "pending")
    worker = subprocess.Popen([sys.executable, str(manage), "omnihook_worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, str(manage), "omnihook_events", "list", "--json",
                                   "--status", "done"], capture_output=True, text=True, env=env,
                                  timeout=60)  # fmt: skip
            if done.stdout.strip():
                break
            time.sleep(0.2)
        assert json.loads(done.stdout.splitlines()[0])["room_id"] == "R-stored"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_missing_settings_are_named() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from omnihook.receiver.django import omnihook_settings

    with override_settings(OMNIHOOK={}), pytest.raises(ImproperlyConfigured, match="ROUTER"):
        omnihook_settings()
    with override_settings(OMNIHOOK={"ROUTER": "tests.receiver.django_site.hooks:router"}), \
            pytest.raises(ImproperlyConfigured, match="TOKENS"):  # fmt: skip
        omnihook_settings()
