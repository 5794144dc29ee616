"""This version against the last one before segments (issue #22), in the same run: a full build, the latency of
`ask`, and search over a large index must be no worse.

The earlier version is the commit `BASELINE`, taken out of this repository's history (`git archive`) into a
temporary folder; each version runs in its own process (`--probe`), with `rag` imported from its own tree and the
same installed packages, on the same corpora. Each repeat starts both (each builds alone, in turn; the order
swaps between repeats), then asks them the same questions one at a time, in turn, so that a slower minute of
this noisy machine falls on both versions alike (run apart, the same version's median `ask` moved from 49 to
77 ms between runs here). Measured by each:

- full build, real model: a corpus of 600 documents of real sentences (bench/indexing.py's), `rag index --full`;
- full build, stand-in encoder: 10,000 such documents, vectors made by a seeded random stand-in of the model's
  dimension (as bench/segments.py makes them), so that what is timed is what is not embedding: splitting, the
  sentence table, BM25, FAISS, writing;
- `ask` on the bundled corpus: the team's questions (bench/tuning.jsonl), three rounds, no answer cache;
- `ask` on the 10,000-document index: the same questions (retrieval over 13,000 chunks, the reader, the answer).

    .venv/bin/python bench/versions.py [--baseline COMMIT] [--repeats 2]
    .venv/bin/python bench/versions.py --scale 1000000    # the same, bench/scale.py at a million chunks
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "bec7ec6"  # the last commit before segments and BM25 over postings (git log: c7c1e1b is the next)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scale", type=int, metavar="CHUNKS", help="instead: bench/scale.py at CHUNKS, each version")
    parser.add_argument("--probe", nargs=2, metavar=("TREE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(Path(args.probe[0]), Path(args.probe[1]))
        return
    if args.scale:
        scale(args.baseline, args.scale)
        return
    sys.path.insert(0, str(ROOT))
    from bench.common import spread, write_result
    from bench.indexing import real_sentences, write_corpus

    questions = [json.loads(line)["question"] for line in (ROOT / "bench" / "tuning.jsonl").open(encoding="utf-8")]
    builds: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
    asks: dict[str, dict[str, list[float]]] = {v: {"bundled": [], "10k": []} for v in builds}
    with tempfile.TemporaryDirectory() as tmp:
        work, old = Path(tmp), Path(tmp) / "baseline"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        sentences = real_sentences()
        write_corpus(work / "c600", 600, sentences, seed=5)
        write_corpus(work / "c10k", 10_000, sentences, seed=6)
        shutil.copytree(ROOT / "corpus", work / "bundled")
        for repeat in range(args.repeats):
            order = [("baseline", old), ("current", ROOT)][:: 1 if repeat % 2 == 0 else -1]
            probes = {}
            for name, tree in order:  # each builds alone, then both stay up for the questions
                probes[name] = subprocess.Popen(
                    [sys.executable, __file__, "--probe", str(tree), str(work)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"},  # the stand-in's vectors: the same in each process
                )
                builds[name].append(_reply(probes[name], name))
                print(name, builds[name][-1], flush=True)
            for corpus in ("bundled", "10k"):
                for i in range(len(questions) * (3 if corpus == "bundled" else 1)):
                    for name, _ in order if i % 2 == 0 else order[::-1]:  # question by question, in turn
                        probes[name].stdin.write(f"{corpus} {i % len(questions)}\n")  # type: ignore[union-attr]
                        probes[name].stdin.flush()  # type: ignore[union-attr]
                        asks[name][corpus].append(_reply(probes[name], name)["ms"])
            for proc in probes.values():
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(60)
    figures: dict[str, Any] = {"baseline": args.baseline, "builds": builds}
    for name in builds:
        figures[name] = {f"best_{k}": min(b[k] for b in builds[name]) for k in builds[name][0]}
        figures[name] |= {f"ask_{corpus}_ms": spread(times) for corpus, times in asks[name].items()}
    ratios = {k: figures["current"][k] / figures["baseline"][k] for k in figures["current"] if k.startswith("best")}
    for corpus in ("bundled", "10k"):
        for q in ("median", "p95"):
            key = f"ask_{corpus}_{q}"
            ratios[key] = figures["current"][f"ask_{corpus}_ms"][q] / figures["baseline"][f"ask_{corpus}_ms"][q]
    figures["current_over_baseline"] = {k: round(v, 3) for k, v in ratios.items()}
    for k, r in figures["current_over_baseline"].items():
        print(f"{k}: {r}x")
    write_result("versions", figures)


def scale(baseline: str, chunks: int) -> None:
    """Each version's own bench/scale.py at `chunks` synthetic chunks (the same generator and seeds in both), one
    version after the other (a million chunks take about 25 minutes a version to build here, with a 15 GB peak, too
    much to hold both at once): its build by part, peak memory, disk, latency by stage and recall, and the ratios."""
    sys.path.insert(0, str(ROOT))
    from bench.common import write_result

    figures: dict[str, Any] = {"baseline": baseline, "chunks": chunks}
    with tempfile.TemporaryDirectory() as tmp:
        for name, commit in (("baseline", baseline), ("current", "HEAD")):
            tree = Path(tmp) / name
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            (tree / "bench" / "results" / "scale.json").unlink(missing_ok=True)
            subprocess.run([sys.executable, "bench/scale.py", "--sizes", str(chunks)], cwd=tree, check=True)
            result = json.loads((tree / "bench" / "results" / "scale.json").read_text())["figures"][str(chunks)]
            figures[name] = result
            print(name, json.dumps({k: result[k] for k in ("build", "peak_rss_mb", "recall_at_10")}), flush=True)
    old, new = figures["baseline"], figures["current"]
    ratios = {f"build_{k}": new["build"][k] / old["build"][k] for k in old["build"]}
    ratios |= {k: new[k] / old[k] for k in ("peak_rss_mb", "disk_bytes_per_chunk")}
    for stage in ("dense", "lexical", "answer", "ask"):
        for q in ("median", "p95"):
            ratios[f"{stage}_{q}"] = new["stages"][stage][q] / old["stages"][stage][q]
    figures["current_over_baseline"] = {k: round(v, 3) for k, v in ratios.items()}
    for k, r in figures["current_over_baseline"].items():
        print(f"{k}: {r}x")
    write_result(f"versions-{chunks}", figures)


def _reply(proc: subprocess.Popen, name: str) -> dict[str, float]:
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line:
        sys.exit(f"the probe of {name} stopped (exit code {proc.wait()})")
    return json.loads(line)


def probe(tree: Path, work: Path) -> None:
    """The `rag` in `tree` on the corpora in `work` (each version builds its own index folders): prints the build
    times, then answers "CORPUS I" lines (question I of bench/tuning.jsonl, no answer cache) with the ms it took."""
    sys.path.insert(0, str(ROOT))
    from bench.common import StandIn  # `bench` from here (the other tree has its own)

    sys.path.insert(0, str(tree))
    from rag import Assistant, Settings, indexing
    from rag.embedding import Encoder

    assert Path(sys.modules["rag"].__file__).is_relative_to(tree), "rag imported from another tree"  # type: ignore[arg-type]
    encoder = Encoder()
    questions = [json.loads(line)["question"] for line in (ROOT / "bench" / "tuning.jsonl").open(encoding="utf-8")]
    out: dict[str, float] = {}
    bots = {}

    def timed_build(corpus: str, model: Any) -> tuple[float, Any]:
        settings = Settings(
            corpus=work / corpus, index=work / f"index-{corpus}-{tree.name}", precision=encoder.precision
        )
        start = time.perf_counter()
        index, _ = indexing.build(settings, model, full=True, progress=False)
        return time.perf_counter() - start, (settings, index)

    out["build_600_documents_s"], _ = timed_build("c600", encoder)
    out["build_10k_documents_stand_in_s"], (settings, index) = timed_build("c10k", StandIn(encoder))
    bots["10k"] = Assistant(settings, index, encoder, cache_size=0)
    _, (settings, index) = timed_build("bundled", encoder)
    bots["bundled"] = Assistant(settings, index, encoder, cache_size=0)
    for bot in bots.values():
        for q in questions[:5]:
            bot.ask(q)  # warm-up
    print(json.dumps({k: round(v, 3) for k, v in out.items()}), flush=True)
    for line in sys.stdin:
        corpus, i = line.split()
        start = time.perf_counter()
        bots[corpus].ask(questions[int(i)])
        print(json.dumps({"ms": 1000 * (time.perf_counter() - start)}), flush=True)


if __name__ == "__main__":
    main()
