"""Reading corpus files: which files count, what is skipped and why, titles, exact decoded text."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rag.readers.documents import TITLE_CHARS, Document, Skipped, list_files, make_title, read_corpus, read_document

from .helpers import write_corpus


def read_all(corpus: Path) -> tuple[dict[str, Document], dict[str, str]]:
    docs, skipped = {}, {}
    for item in read_corpus(corpus):
        if isinstance(item, Skipped):
            skipped[item.source] = item.reason
        else:
            docs[item.source] = item
    return docs, skipped


def test_txt_and_md_files_are_found_recursively_and_others_ignored(tmp_path: Path) -> None:
    write_corpus(
        tmp_path,
        {
            "a.txt": "A text file.",
            "notes/b.md": "# B\n\nMarkdown.",
            "notes/deeper/c.TXT": "Upper-case suffix.",
            "d.pdf": "read by its reader",
            "e.html": "<p>read by its reader</p>",
            "f.txt.bak": "not read",
            "g.xlsx": "not read",
            "README": "no suffix",
            ".hidden.txt": "hidden file",
            ".git/config.txt": "hidden folder",
            "notes/.drafts/g.md": "hidden folder below",
        },
    )
    (tmp_path / "folder.txt").mkdir()  # a folder whose name looks like a document
    found = [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)]
    assert found == ["a.txt", "d.pdf", "e.html", "notes/b.md", "notes/deeper/c.TXT"]


def test_source_is_the_posix_relative_path(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"sub/dir/page.md": "Some text."})
    docs, _ = read_all(tmp_path)
    assert list(docs) == ["sub/dir/page.md"]
    assert docs["sub/dir/page.md"].source == "sub/dir/page.md"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"PK\x03\x04\x00\x00binary", "binary"),
        (b"", "empty"),
        (b"  \n\t\r\n  \n", "empty"),
        ("\ufeff \n".encode(), "empty"),
    ],
    ids=["nul-bytes", "empty", "whitespace-only", "bom-only"],
)
def test_unreadable_files_are_skipped_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    write_corpus(tmp_path, {"good.txt": "Readable text.", "bad.txt": content})
    docs, skipped = read_all(tmp_path)
    assert list(docs) == ["good.txt"]
    assert list(skipped) == ["bad.txt"]
    assert reason in skipped["bad.txt"]


def test_a_symlink_leading_outside_the_corpus_is_skipped(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"inside.txt": "Inside."})
    secret = write_corpus(tmp_path / "outside", {"secret.txt": "Outside the corpus."}) / "secret.txt"
    (corpus / "link.txt").symlink_to(secret)
    (corpus / "alias.txt").symlink_to(corpus / "inside.txt")  # a link that stays inside is fine
    docs, skipped = read_all(corpus)
    assert sorted(docs) == ["alias.txt", "inside.txt"]
    assert "outside" in skipped["link.txt"]


def test_a_broken_symlink_is_skipped(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, {"ok.txt": "Fine."})
    (corpus / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    docs, skipped = read_all(corpus)
    assert list(docs) == ["ok.txt"]
    assert "dangling.txt" in skipped


def test_a_utf8_bom_is_stripped_but_the_hash_covers_the_raw_bytes(tmp_path: Path) -> None:
    raw = "\ufeffTitle\n\nBody text.".encode()
    write_corpus(tmp_path, {"bom.txt": raw})
    doc = read_document(tmp_path, tmp_path / "bom.txt")
    assert doc.text == "Title\n\nBody text."
    assert doc.title == "Title"
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()
    assert doc.size == len(raw)
    assert doc.mtime_ns == os.stat(tmp_path / "bom.txt").st_mtime_ns


def test_crlf_is_kept_so_offsets_match_the_decoded_file(tmp_path: Path) -> None:
    raw = b"First line\r\nSecond line.\r\n\r\nThird \xe2\x80\x93 line.\r\n"
    write_corpus(tmp_path, {"crlf.txt": raw})
    doc = read_document(tmp_path, tmp_path / "crlf.txt")
    assert doc.text == raw.decode("utf-8")
    assert "\r\n" in doc.text
    assert doc.text.index("Second") == raw.index(b"Second")  # one character per byte before the dash


def test_title_is_the_first_non_empty_line(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"t.md": "\n\n   \n  ## Japan-Ukraine Relations  \nBody."})
    assert read_document(tmp_path, tmp_path / "t.md").title == "Japan-Ukraine Relations"


def test_a_line_of_bare_markup_is_not_the_title(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"only-hashes.md": "###\nBody text."})
    assert read_document(tmp_path, tmp_path / "only-hashes.md").title == "Body text."


def test_a_latin1_file_is_decoded_and_its_hash_covers_the_raw_bytes(tmp_path: Path) -> None:
    raw = "Café notes\n\nThe café serves crème brûlée.".encode("latin-1")
    write_corpus(tmp_path, {"cafe.txt": raw})
    doc = read_document(tmp_path, tmp_path / "cafe.txt")
    assert doc.text == raw.decode("latin-1") and doc.title == "Café notes"
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()


def test_a_damaged_pdf_is_skipped_with_a_reason(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"good.txt": "Readable text.", "bad.pdf": b"%PDF-1.7 truncated"})
    docs, skipped = read_all(tmp_path)
    assert list(docs) == ["good.txt"] and "PDF" in skipped["bad.pdf"]


@pytest.mark.parametrize(
    "line",
    [
        "Ukraine-Japan Cooperation: Ukrainian Foreign Minister visits Japan to bolster ties and seek reconstruction",
        "x" * 200,
        "word " * 40,
        ("a" * 79) + " " + ("b" * 30),
    ],
)
def test_a_long_title_is_shortened(line: str) -> None:
    title = make_title(line, Path("doc.txt"))
    assert len(title) <= TITLE_CHARS + 1
    assert title.endswith("…")
    assert line.startswith(title[:-1])


def test_a_short_title_is_kept_whole() -> None:
    line = "y" * TITLE_CHARS
    assert make_title(line, Path("doc.txt")) == line


def test_a_file_without_a_title_is_named_by_its_file_name() -> None:
    assert make_title(None, Path("notes/plan.txt")) == "plan.txt"
    assert make_title("  \n ", Path("plan.txt")) == "plan.txt"
