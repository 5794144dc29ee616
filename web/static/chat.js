// The chat, better with JavaScript: ask without reloading the page. Replies are HTML fragments rendered (and
// escaped) by the server's _turn.html, the same template the no-JavaScript form post uses.
"use strict";
(function () {
  const form = document.getElementById("ask");
  const input = document.getElementById("q");
  const status = document.getElementById("status");
  const conversation = document.getElementById("conversation");
  let busy = false;

  function history() {
    return Array.from(conversation.querySelectorAll("article.turn[data-answered]"), (t) => t.dataset.question);
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
  }

  async function send() {
    const question = input.value.trim();
    if (!question || busy) return;
    busy = true;
    form.setAttribute("aria-busy", "true");
    status.textContent = "Searching the documents…";
    const body = new URLSearchParams();
    body.append("q", question);
    body.append("n", String(conversation.querySelectorAll("article.turn").length + 1));
    history().forEach((h) => body.append("history", h));
    const csrf = form.querySelector('input[name="csrf"]'); // a private server's forms carry it (access.py)
    if (csrf) body.append("csrf", csrf.value);
    try {
      const reply = await fetch("/turn", { method: "POST", body });
      const html = await reply.text();
      const intro = document.getElementById("intro");
      if (intro) intro.remove();
      conversation.insertAdjacentHTML("beforeend", html);
      if (reply.ok) input.value = "";
      status.textContent = reply.ok ? "" : "That question could not be asked; see the message above.";
      conversation.lastElementChild.scrollIntoView({ block: "start", behavior: "smooth" });
    } catch (err) {
      status.textContent = "The server did not answer. Check that it is running, then try again.";
    } finally {
      busy = false;
      form.removeAttribute("aria-busy");
      resize();
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  input.addEventListener("input", resize);
  input.focus();
})();
