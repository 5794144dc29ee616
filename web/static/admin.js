// Admin actions: upload a document, remove one, rebuild the index, show its documents, skipped files and state.
// The token stays in this tab only. The page renders the documents and only the count of skipped files; the
// skipped files themselves come with the token (GET /api/index) and are drawn here, after every change too.
"use strict";
(function () {
  const token = document.getElementById("token");
  const result = document.getElementById("admin-result");
  const box = document.getElementById("index-status");
  const REFRESH_MS = 1000; // how often the state is read again while a rebuild runs (a small corpus takes ~1 s)
  token.value = sessionStorage.getItem("rag-admin-token") || "";
  token.addEventListener("change", () => {
    sessionStorage.setItem("rag-admin-token", token.value);
    refresh().catch(() => {}); // the skipped files show once the token is given
  });

  async function call(method, url, body) {
    const headers = { Authorization: "Bearer " + token.value };
    const reply = await fetch(url, { method, headers, body });
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error ? data.error.message : reply.statusText);
    return data;
  }

  // The same text as Jinja's filesizeformat, which renders the page's first table.
  function size(bytes) {
    if (bytes === 1) return "1 Byte";
    if (bytes < 1000) return bytes + " Bytes";
    const units = ["kB", "MB", "GB", "TB"];
    let i = 0, value = bytes / 1000;
    while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
    return value.toFixed(1) + " " + units[i];
  }

  function cell(row, text, code) {
    const td = row.insertCell();
    if (code) td.appendChild(document.createElement("code")).textContent = text;
    else td.textContent = text;
  }

  function removeButton(row, source) {
    const button = row.insertCell().appendChild(document.createElement("button"));
    button.type = "button";
    button.className = "remove";
    button.dataset.source = source;
    button.textContent = "Remove";
  }

  function drawDocuments(docs) {
    const body = document.querySelector("#indexed tbody");
    body.replaceChildren();
    for (const d of docs) {
      const row = body.insertRow();
      cell(row, d.title); cell(row, d.source, true); cell(row, String(d.chunks)); cell(row, size(d.size));
      removeButton(row, d.source);
    }
  }

  function drawSkipped(skipped) {
    const body = document.querySelector("#skipped tbody");
    const sources = Object.keys(skipped).sort();
    body.replaceChildren();
    for (const source of sources) {
      const row = body.insertRow();
      cell(row, source, true); cell(row, skipped[source].reason);
      removeButton(row, source);
    }
    document.getElementById("skipped").hidden = sources.length === 0;
    document.getElementById("none-skipped").hidden = sources.length > 0;
    const count = document.getElementById("skipped-count"); // the page's count, for a visitor without the token
    if (count) count.hidden = true;
  }

  // The report of a rebuild in one line: its lists (or, without the token, their counts) as counts.
  function reportText(report) {
    if (!report) return "none yet";
    const n = (v) => (Array.isArray(v) ? v.length : Number(v) || 0);
    const parts = ["added", "changed", "removed", "unchanged", "skipped"].map((k) => n(report[k]) + " " + k);
    if (n(report.cut)) parts.push(n(report.cut) + " cut short");
    const why = report.rebuilt ? "from scratch (" + report.rebuilt + "): " : "";
    return why + parts.join(", ") + "; " + n(report.chunks_embedded) + " chunks embedded in " +
      Number(report.seconds || 0).toFixed(1) + " s";
  }

  function rebuildText(rebuild) {
    if (rebuild.running) return "running since " + rebuild.started_at + (rebuild.queued ? ", another queued" : "");
    return rebuild.runs ? "idle; " + rebuild.runs + " since the server started" : "none since the server started";
  }

  // The state as a short list of terms and values (it was raw JSON, wider than a phone).
  function drawStatus(data) {
    const c = data.chunker || {}, m = data.model || {};
    const chunker = "about " + c.chunk_words + " words, " + c.overlap + " sentence(s) shared with the next";
    const model = m.name + " (" + m.dimension + " dimensions, " + m.precision + ")";
    const rows = [
      ["Documents", data.documents + " (" + data.chunks + " passages)"],
      ["Built", data.built_at],
      ["Model", model],
      ["Passages", chunker],
      ["Skipped files", String(data.skipped_count)],
      ["Rebuild", rebuildText(data.rebuild)],
      ["Last finished", data.rebuild.last_finished_at || "—"],
      ["Last report", reportText(data.rebuild.last_report)],
    ];
    if (data.rebuild.last_error) rows.push(["Last error", data.rebuild.last_error]);
    box.replaceChildren();
    for (const [term, value] of rows) {
      box.appendChild(document.createElement("dt")).textContent = term;
      box.appendChild(document.createElement("dd")).textContent = value == null ? "—" : String(value);
    }
  }

  async function refresh() {
    const data = await call("GET", "/api/index");
    drawStatus(data);
    if (data.skipped) drawSkipped(data.skipped);  // only the admin token is shown the skipped files
    drawDocuments(await call("GET", "/api/documents"));
    if (data.rebuild.running) setTimeout(() => refresh().catch(() => {}), REFRESH_MS);
  }

  async function run(action) {
    try {
      result.textContent = await action();
      await refresh();
    } catch (err) {
      result.textContent = "Refused: " + err.message;
    }
  }

  function documentUrl(source) {
    return "/api/documents/" + source.split("/").map(encodeURIComponent).join("/");
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
  document.querySelector("main").addEventListener("click", (event) => {
    const button = event.target.closest("button.remove");
    if (!button) return;
    const source = button.dataset.source;
    if (!window.confirm("Remove " + source + "? Its file is deleted from the corpus.")) return;
    run(async () => {
      await call("DELETE", documentUrl(source));
      return "Removed " + source + "; the index is being updated.";
    });
  });
  refresh().catch(() => {});
})();
