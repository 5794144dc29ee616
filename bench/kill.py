"""SIGKILL `rag index` at random moments of a full build, many times, and check what each kill leaves behind.

Two versions of a corpus of real sentences (bench/indexing.py) differ in every document. Each round switches the
corpus to the version the index does not hold, starts `rag index --full` in its own process group and kills the
group with SIGKILL after a random delay spread over the whole build, the final save included. After every kill
the index must load and hold exactly the old version or the new one: never an error, never a mix, never empty.
`make test` runs a short version (tests/test_faults.py); this is the full run.

    .venv/bin/python bench/kill.py [--kills 30] [--docs 400]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import write_result  # noqa: E402
from bench.indexing import real_sentences, write_corpus  # noqa: E402
from bench.server import RAG, rag_env  # noqa: E402
from rag import (
    Settings,  # noqa: E402
    indexing,  # noqa: E402
)
from rag.embedding import Encoder  # noqa: E402
from rag.indexing import store  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402


def run_index(settings: Settings, kill_after: float | None) -> float:
    """`rag index --full`, killed after `kill_after` seconds if given; returns the seconds it ran."""
    command = [str(RAG), "--corpus", str(settings.corpus), "--index", str(settings.index), "index", "--full"]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=rag_env(), start_new_session=True
    )
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return time.perf_counter() - start


def state(settings: Settings, encoder: Encoder) -> frozenset[str]:
    """The content hashes of the documents in the index as it is now (raises if it cannot be loaded)."""
    index = store.load(settings.index, indexing.index_settings(settings, encoder))
    assert Assistant(settings, index, encoder).ask("What did Japan provide to Ukraine?").citations
    return frozenset(d.sha256 for d in index.documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--docs", type=int, default=400)
    args = parser.parse_args()
    encoder, sentences, rng = Encoder(), real_sentences(), np.random.default_rng(11)
    with tempfile.TemporaryDirectory(prefix="rag-kill-") as tmp:
        settings = Settings(corpus=Path(tmp) / "corpus", index=Path(tmp) / "index")

        def switch_to(variant: int) -> None:  # two versions of the corpus: every document differs, 50 more in one
            for path in settings.corpus.rglob("*.txt"):
                path.unlink()
            write_corpus(settings.corpus, args.docs + 50 * variant, sentences, seed=1 + variant)

        hashes = {}
        for variant in (1, 0):
            switch_to(variant)
            duration = run_index(settings, None)  # the last one, of version 0, times the build the kills spread over
            hashes[variant] = state(settings, encoder)
        current = 0
        rounds: list[dict[str, Any]] = []
        for _ in range(args.kills):
            target = 1 - current
            switch_to(target)
            delay = float(rng.uniform(0.05, duration * 1.05))
            run_index(settings, delay)
            try:
                found = state(settings, encoder)
                outcome = "old" if found == hashes[current] else "new" if found == hashes[target] else "mixed"
            except Exception as exc:  # recorded as a failure, not raised: every round is reported
                outcome, found = f"error: {type(exc).__name__}: {exc}", hashes[current]
            current = target if outcome == "new" else current
            rounds.append(
                {"delay_s": round(delay, 3), "fraction_of_build": round(delay / duration, 3), "outcome": outcome}
            )
            print(f"kill at {delay:5.2f} s ({delay / duration:4.0%} of the build): {outcome}", file=sys.stderr)
    failures = [r for r in rounds if r["outcome"] not in ("old", "new")]
    figures = {
        "kills": len(rounds),
        "build_s": round(duration, 2),
        "failures": len(failures),
        "old": sum(r["outcome"] == "old" for r in rounds),
        "new": sum(r["outcome"] == "new" for r in rounds),
        "after_90_percent": sum(r["fraction_of_build"] >= 0.9 for r in rounds),
        "rounds": rounds,
    }
    write_result("kill", figures)
    print(
        f"{len(rounds)} kills over a {duration:.1f} s build: {figures['old']} left the old index, {figures['new']} "
        f"the new one, {len(failures)} anything else; {figures['after_90_percent']} in the last 10% (the save)"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
