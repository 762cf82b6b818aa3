"""The browser kit works end to end: a real uvicorn server, Debian's Chromium, a form and the
JavaScript that answers it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from playwright.sync_api import Page

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>omnihook browser smoke</title></head>
<body>
  <h1>Greeter</h1>
  <form id="greet">
    <label>Name <input name="name" id="name" required></label>
    <button type="submit">Greet</button>
  </form>
  <p id="result" role="status">nobody greeted yet</p>
  <script>
    document.getElementById("greet").addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = document.getElementById("name").value;
      const response = await fetch("/api/greet", {
        method: "POST",
        headers: {"content-type": "application/json"},
        body: JSON.stringify({name}),
      });
      const body = await response.json();
      document.getElementById("result").textContent = body.greeting + " (" + body.count + ")";
    });
  </script>
</body>
</html>
"""


def greeter_app() -> tuple[Starlette, list[str]]:
    """The page, and the names its API received, in order."""
    names: list[str] = []

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def greet(request: Request) -> JSONResponse:
        name = (await request.json())["name"]
        names.append(name)
        return JSONResponse({"greeting": f"Hello, {name}!", "count": len(names)})

    app = Starlette(routes=[Route("/", index), Route("/api/greet", greet, methods=["POST"])])
    return app, names


def test_form_submits_and_javascript_shows_the_answer(
    page: Page,
    serve_app: Any,
    screenshot: Callable[[Page, str], Path],
) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    app, names = greeter_app()
    url = serve_app(app).url

    page.goto(url)
    expect(page).to_have_title("omnihook browser smoke")
    expect(page.locator("#result")).to_have_text("nobody greeted yet")

    page.get_by_label("Name").fill("Ada")
    page.get_by_role("button", name="Greet").click()
    expect(page.get_by_role("status")).to_have_text("Hello, Ada! (1)")

    page.get_by_label("Name").fill("Grace <b>Hopper</b>")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Hello, Grace <b>Hopper</b>! (2)")

    shot = screenshot(page, "greeted")
    assert shot.stat().st_size > 1000
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert names == ["Ada", "Grace <b>Hopper</b>"]
    assert errors == []
