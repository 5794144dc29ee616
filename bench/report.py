"""Turn bench/results/*.json into bench/results/summary.md and PNG plots (what the README's Performance section
shows). Run by `make bench` after the measurements; it measures nothing itself.

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.common import RESULTS  # noqa: E402
from bench.stages import STAGES  # noqa: E402


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def latency_rows() -> list[tuple[str, dict[str, Any]]]:
    rows = []
    if latency := load("latency"):
        rows.append((f"bundled ({latency['figures']['chunks']} chunks)", latency["figures"]["stages"]))
    if scale := load("scale"):
        for n, fig in scale["figures"].items():
            rows.append((f"{int(n):,} chunks ({fig['dense']['type']})", fig["stages"]))
    return rows


def plot_latency(rows: list[tuple[str, dict[str, Any]]]) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    bottoms = [0.0] * len(rows)
    for stage in STAGES:
        values = [r[stage]["median"] for _, r in rows]
        ax.bar([n for n, _ in rows], values, bottom=bottoms, label=stage)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for i, (_, r) in enumerate(rows):
        ax.plot([i - 0.4, i + 0.4], [r["floor"]["median"]] * 2, color="black", linewidth=2)
        ax.plot([i - 0.4, i + 0.4], [r["floor"]["median"] * (1.5 if i == 0 else 3)] * 2, "k--", linewidth=1)
    ax.set_ylabel("ms (median)")
    ax.set_title("ask, by stage; solid line: bare encode (floor); dashed: the budget")
    ax.legend(fontsize=8)
    plt.xticks(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_http(http: dict[str, Any]) -> Path:
    levels = http["http"]["levels"]
    xs = sorted(levels, key=int)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for endpoint in ("ask", "ping"):
        ax.plot([int(x) for x in xs], [levels[x][endpoint]["rps"] for x in xs], marker="o", label=f"/api/{endpoint}")
    ax.axhline(http["inprocess"]["threads_2"]["rps"], color="gray", linestyle="--", label="in-process, 2 threads")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "http.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ms(fig: dict[str, Any]) -> str:
    return f"{fig['median']:.2f} ({fig['p10']:.2f}–{fig['p90']:.2f})"


def one_line_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Files of one line without sentence ends: build speed against prose, splitting time per MB."""
    if not rows:
        return []
    out = [
        "One-line files without sentence ends (target: at least half the chunks/s of prose; splitting time per MB "
        "flat as the size grows):",
        "",
        "| MB | chunks | chunks/s | vs prose | split s/MB | first progress s |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['megabytes']:g} | {r['chunks']:,} | {r['build_chunks_per_s']} | {r['vs_prose_chunks_per_s']:.2f} | "
        f"{r['split_s_per_mb']} | {r['first_progress_s']} |"
        for r in rows
    ]
    return [*out, ""]


def reader_lines(figures: dict[str, Any]) -> list[str]:
    """Pages/s of the chosen PDF and HTML readers (bench/readers.py)."""
    pdf = [r for r in figures.get("pdf", []) if r["library"].startswith("rag ")]
    out = ["## Readers", "", "| file | reader | pages | pages/s |", "|---|---|---|---|"]
    out += [f"| {r['file']} | {r['library']} | {r['pages']} | {r['pages_per_s']} |" for r in pdf]
    for name, r in figures.get("html", {}).items():
        out.append(f"| {r['pages']} HTML pages | {name} | {r['pages']} | {r['pages_per_s']} |")
    return [*out, ""]


def encoder_lines(figures: dict[str, Any]) -> list[str]:
    """bench/encoder.py: int8 against fp32 as `rag` runs them, and what one int8 MatMul layer gains alone."""
    lines = ["## Encoder: int8 against fp32", "", "| what | fp32 | int8 | int8 speed-up |", "|---|---|---|---|"]
    for corpus, b in figures.get("builds", {}).items():
        lines.append(
            f"| full build, {corpus} ({b['sentences']:,} sentences) | {b['fp32_s']} s | {b['int8_s']} s | "
            f"{b['int8_speed_up']:.2f}x |"
        )
    t = figures["throughput"]
    base = t["sessions"]
    fp32 = next(f for k, f in base.items() if k.startswith("fp32"))
    int8 = next(f for k, f in base.items() if k.startswith("int8"))
    up = t["shipped_int8_speed_up"]
    lines += [
        f"| a question | {fp32['question_ms']} ms | {int8['question_ms']} ms | {up['question']:.2f}x |",
        f"| sentences, as a build runs them | | | {up['sentences']:.2f}x |",
    ]
    ceiling = {k: v for k, v in figures.get("gemm_int8_vs_fp32", {}).items() if ", model," in k}
    lines += [f"| one MatMul layer alone: {k.replace(', model,', ',')} | | | {v:.2f}x |" for k, v in ceiling.items()]
    return lines + [""]


def summary() -> str:
    lines = ["# Benchmark summary", ""]
    any_result = next((load(n) for n in ("latency", "scale", "http", "indexing", "startup") if load(n)), None)
    if any_result:
        m = any_result["machine"]
        lines += [
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}; {m['date']}.",
            "",
        ]
    rows = latency_rows()
    if rows:
        head = " | ".join(STAGES)
        lines += [
            "## Latency of `ask`, in-process (ms: median (p10–p90))",
            "",
            f"| corpus | {head} | ask | floor | ask / floor |",
            "|---" * (len(STAGES) + 4) + "|",
        ]
        for name, r in rows:
            cells = " | ".join(f"{r[s]['median']:.3f}" for s in STAGES)
            lines.append(f"| {name} | {cells} | {ms(r['ask'])} | {ms(r['floor'])} | {r['ratio_to_floor']:.2f} |")
        lines += ["", "![latency](latency.png)", ""]
        plot_latency(rows)
    if scale := load("scale"):
        lines += [
            "## Scale",
            "",
            "| chunks | dense | recall@10 | build s (assemble) | load s | disk bytes/chunk | peak RSS MB |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, f in scale["figures"].items():
            params = " ".join(f"{k}={v}" for k, v in f["dense"].items() if k != "type")
            lines.append(
                f"| {int(n):,} | {f['dense']['type']} {params} | {f['recall_at_10']} | {f['build']['assemble_s']} | "
                f"{f['build']['load_s']} | {f['disk_bytes_per_chunk']:.0f} | {f['peak_rss_mb']:.0f} |"
            )
        lines.append("")
    if http := load("http"):
        h = http["figures"]
        lines += [
            "## HTTP (`rag serve`, loopback)",
            "",
            "| clients | /api/ask req/s | p50 ms | p99 ms | errors | /api/ping req/s |",
            "|---|---|---|---|---|---|",
        ]
        for c, lv in sorted(h["http"]["levels"].items(), key=lambda kv: int(kv[0])):
            a, p = lv["ask"], lv["ping"]
            lines.append(
                f"| {c} | {a['rps']:.0f} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | {a['errors']} | {p['rps']:.0f} |"
            )
        lines += [
            "",
            f"In-process, same questions, 2 threads: {h['inprocess']['threads_2']['rps']:.0f} req/s; "
            f"HTTP at 8 clients / in-process: {h['ratio_http8_to_inprocess2']:.2f} (target ≥ 0.70).",
            "",
            "![http](http.png)",
            "",
        ]
        plot_http(h)
    if indexing := load("indexing"):
        t, i = indexing["figures"]["throughput"], indexing["figures"].get("incremental")
        lines += [
            "## Indexing",
            "",
            f"Precision {indexing['figures'].get('precision', 'fp32')}. "
            f"Full build of {t['documents']:,} documents ({t['chunks']:,} chunks, {t['sentences']:,} sentences): "
            f"{t['build_chunks_per_s']} chunks/s; the bare encoder on the same texts: "
            f"{t['bare_chunks_per_s_same_texts']} chunks/s, so the build runs at "
            f"{t['build_vs_bare_same_texts']:.0%} of it (target ≥ 80%). Encoding the chunk texts instead would run at "
            f"{t['bare_chunks_per_s_chunk_texts']} chunks/s.",
            "",
        ]
        if i:
            lines += [
                f"Adding one document to {i['documents']:,} ({i['chunks']:,} chunks): {ms(i['add_one_document_s'])} "
                f"s, {i['fraction_of_full']:.2%} of the full build's {i['full_build_s']:.0f} s (target < 5%).",
                "",
            ]
        lines += one_line_lines(indexing["figures"].get("one_line", []))
    if encoder := load("encoder"):
        lines += encoder_lines(encoder["figures"])
    if readers := load("readers"):
        lines += reader_lines(readers["figures"])
    if soak := load("soak"):
        f, w = soak["figures"], soak["figures"]["swap"]
        lines += [
            "## Soak: load with a rebuild under it",
            "",
            f"{f['clients']} clients for {f['seconds']:.0f} s: {f['rps']:.1f} req/s, p50 {f['p50_ms']:.1f} ms, "
            f"p95 {f['p95_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, {f['errors']} failed requests. A document was "
            f"added and `/api/reindex` asked for a third of the way in ({w['reindex_status']}; an overlapping "
            f"second request got {w['overlapping_reindex_status']}); the rebuild took {w['rebuild_s']} s and "
            f"answers then came from the new document: {w['switched']}.",
            "",
        ]
    if kill := load("kill"):
        k = kill["figures"]
        lines += [
            "## SIGKILL during `rag index`",
            "",
            f"{k['kills']} kills at random moments of a {k['build_s']} s full build ({k['after_90_percent']} in "
            f"its last 10%, the save): {k['old']} left the previous index, {k['new']} the new one, "
            f"{k['failures']} anything else.",
            "",
        ]
    if startup := load("startup"):
        f = startup["figures"]
        lines += [
            "## Start-up (index already built)",
            "",
            "| what | ms: median (p10–p90) | peak RSS MB |",
            "|---|---|---|",
            f"| `rag serve` until /api/health answers | {ms(f['serve']['ready_ms'])} | "
            f"{f['serve']['peak_rss_mb_after_10_questions']} (after 10 questions) |",
            f"| `rag ask` from process start to printed answer | {ms(f['ask_onnx']['wall_ms'])} | "
            f"{f['ask_onnx']['peak_rss_mb']['median']:.0f} |",
            f"| the same with `RAG_BACKEND=torch` | {ms(f['ask_torch']['wall_ms'])} | "
            f"{f['ask_torch']['peak_rss_mb']['median']:.0f} |",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    text = summary()
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
