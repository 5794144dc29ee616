// A small note in the chat when the index serving it changed (a rebuild, `rag serve --watch`, `rag index`):
// GET /api/index is read every few seconds while the tab is visible, and its built_at and counts compared.
"use strict";
(function () {
  const POLL_MS = 5000; // one small request a tab every 5 s: a new document shows up within a question's time
  const SHOW_MS = 6000; // long enough to read one short line, then it goes
  const MAX_BACKOFF_MS = 60000; // an unreachable server is asked once a minute at most
  let seen = null, delay = POLL_MS, hideTimer = null;

  const note = document.createElement("p");
  note.className = "live-note";
  note.setAttribute("role", "status");
  note.hidden = true;
  document.body.appendChild(note);

  function show(data) {
    const docs = data.documents === 1 ? "1 document" : data.documents + " documents";
    note.textContent = "Index updated: " + docs;
    note.hidden = false;
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => { note.hidden = true; }, SHOW_MS);
  }

  async function poll() {
    if (document.visibilityState === "visible") {
      try {
        const reply = await fetch("/api/index", { cache: "no-store" });
        if (!reply.ok) throw new Error(reply.statusText);
        const data = await reply.json();
        const stamp = [data.built_at, data.documents, data.chunks].join("|");
        if (seen !== null && stamp !== seen) show(data);
        seen = stamp;
        delay = POLL_MS;
      } catch (err) {
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }
    setTimeout(poll, delay);
  }
  poll();
})();
