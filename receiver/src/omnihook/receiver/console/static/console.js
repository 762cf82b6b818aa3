// The console's only script: the live view (server-sent events). Everything else is plain HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("live");
  if (!list) return;
  const state = document.getElementById("live-state");
  const base = document.body.dataset.base || "";
  const source = new EventSource(base + "/live/stream");
  source.onopen = () => { state.textContent = "Connected: new events appear here as they arrive."; };
  source.onerror = () => { state.textContent = "Disconnected; retrying…"; };
  source.addEventListener("event", (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = base + "/events/" + event.id;
    link.textContent = "#" + event.id + " " + event.type;
    item.append(link, " ", event.status, " ", event.room || "", " ", event.summary || "");
    item.className = "status-" + event.status;
    list.prepend(item);  // textContent and append: a visitor's text is never markup
    while (list.children.length > 200) list.lastElementChild.remove();
  });
});
