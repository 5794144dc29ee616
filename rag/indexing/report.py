"""What a build did: documents added, changed, removed, unchanged and skipped, and what was embedded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..readers.documents import Skipped, printable


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cut: list[Skipped] = field(default_factory=list)  # indexed, but only the first max_text_chars of their text
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    chunks: int = 0
    seconds: float = 0.0
    rebuilt: str | None = None  # why every document was embedded again, when it was

    def summary(self) -> str:
        why = f"rebuilt from scratch: {self.rebuilt}; " if self.rebuilt else ""
        return why + (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped{self._cut()}; {self.chunks_embedded} chunks "
            f"embedded ({self.chunks} in the index) in {self.seconds:.1f} s"
        )

    def _cut(self) -> str:
        return f", {len(self.cut)} cut short" if self.cut else ""

    def skip_lines(self) -> list[str]:
        """One line a skipped file and a file cut short, its name made safe to print."""
        return [f"skipped {printable(s.source)}: {s.reason}" for s in self.skipped] + [
            f"cut {printable(s.source)}: {s.reason}" for s in self.cut
        ]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("skipped", "cut")}
        out["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        out["cut"] = [{"source": s.source, "reason": s.reason} for s in self.cut]
        out["seconds"] = round(self.seconds, 3)
        return out
