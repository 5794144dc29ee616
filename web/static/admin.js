// Admin actions: upload a document, rebuild the index, show its state. The token stays in this tab only.
"use strict";
(function () {
  const token = document.getElementById("token");
  const result = document.getElementById("admin-result");
  const box = document.getElementById("index-status");
  token.value = sessionStorage.getItem("rag-admin-token") || "";
  token.addEventListener("change", () => sessionStorage.setItem("rag-admin-token", token.value));

  async function call(method, url, body) {
    const headers = { Authorization: "Bearer " + token.value };
    const reply = await fetch(url, { method, headers, body });
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error ? data.error.message : reply.statusText);
    return data;
  }

  async function refresh() {
    const data = await call("GET", "/api/index");
    box.textContent = JSON.stringify(data, null, 2);
    if (data.rebuild.running) setTimeout(refresh, 1000);
  }

  async function run(action) {
    try {
      result.textContent = await action();
      await refresh();
    } catch (err) {
      result.textContent = "Refused: " + err.message;
    }
  }

  document.getElementById("upload").addEventListener("click", () => run(async () => {
    const file = document.getElementById("file").files[0];
    if (!file) return "Choose a file first.";
    const form = new FormData();
    form.append("file", file);
    const data = await call("POST", "/api/documents", form);
    return "Added " + data.source + "; the index is being updated.";
  }));
  document.getElementById("rebuild").addEventListener("click", () => run(async () => {
    await call("POST", "/api/reindex");
    return "Rebuild started.";
  }));
  document.getElementById("status-btn").addEventListener("click", () => run(async () => "Status refreshed."));
  refresh().catch(() => {});
})();
