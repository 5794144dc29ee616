"""Corpus files behind links: a link inside the corpus is read, one leading out of it is refused, and a link swapped
between the check and the read never serves a file from outside (issue #11, item 3).

The race is made deterministic: the swap is done from inside the reader, at the one moment that matters, by
patching the step it happens after (`Path.resolve`: the check) or before (`os.open`: the read).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag import indexing
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.readers import Unreadable
from rag.readers.documents import read_corpus_file, read_document

from .helpers import write_corpus
from .server_support import Served, assert_error, serve

INSIDE = "Inside Notes\n\nThe inside ledger lists every lighthouse keeper of the Seto Inland Sea."
NESTED = "Nested Notes\n\nThe nested ledger lists every ferry of the Akashi Strait."
SECRET = "Secret Notes\n\nSECRET: the outside ledger must never be served."


@dataclass
class Tree:
    corpus: Path
    outside: Path

    def repoint_link(self) -> None:
        """`link.txt` (a link to `inside.txt`) now leads to a file outside the corpus, replaced atomically."""
        tmp = self.corpus / ".link.tmp"
        tmp.symlink_to(self.outside / "doc.txt")
        os.replace(tmp, self.corpus / "link.txt")

    def replace_folder(self) -> None:
        """The folder `sub` (holding `doc.txt`) is now a link to an outside folder holding a `doc.txt` too."""
        os.rename(self.corpus / "sub", self.corpus.parent / "sub-kept")
        (self.corpus / "sub").symlink_to(self.outside, target_is_directory=True)

    def restore(self) -> None:
        (self.corpus / "link.txt").unlink()
        (self.corpus / "link.txt").symlink_to("inside.txt")
        if (self.corpus / "sub").is_symlink():
            (self.corpus / "sub").unlink()
            os.rename(self.corpus.parent / "sub-kept", self.corpus / "sub")


def make_tree(root: Path) -> Tree:
    corpus = write_corpus(root / "corpus", {"inside.txt": INSIDE, "sub/doc.txt": NESTED})
    (corpus / "link.txt").symlink_to("inside.txt")  # a link that stays inside the corpus: allowed
    outside = write_corpus(root / "outside", {"doc.txt": SECRET})
    return Tree(corpus, outside)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return make_tree(tmp_path)


# (which file is read, how it is swapped): a link re-pointed, or a folder on the path replaced by a link
ATTACKS = {
    "link": ("link.txt", Tree.repoint_link),
    "folder": ("sub/doc.txt", Tree.replace_folder),
}


def swap_after_check(mp: pytest.MonkeyPatch, target: Path, attack: Callable[[], None]) -> list[bool]:
    """Swap right after the reader resolves `target` (the check of where it leads), once."""
    real, fired = Path.resolve, []

    def resolve(self: Path, strict: bool = False) -> Path:
        out = real(self, strict)
        if not fired and self.absolute() == target:
            fired.append(True)
            attack()
        return out

    mp.setattr(Path, "resolve", resolve)
    return fired


def swap_before_open(mp: pytest.MonkeyPatch, target: Path, attack: Callable[[], None]) -> list[bool]:
    """Swap right before the reader opens `target`, once: the check, wherever it is, must look at what was opened."""
    real, fired = os.open, []

    def opener(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if not fired and Path(os.path.abspath(path)) == target:
            fired.append(True)
            attack()
        return real(path, flags, *args, **kwargs)

    mp.setattr(os, "open", opener)
    return fired


MOMENTS = {"after-check": swap_after_check, "before-open": swap_before_open}


def without_proc(mp: pytest.MonkeyPatch) -> None:
    """As on a system without /proc (macOS): the reader checks the resolved path is the file it opened."""
    real = os.readlink

    def readlink(path: Any, *args: Any, **kwargs: Any) -> str:
        if str(path).startswith("/proc/self/fd/"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path, *args, **kwargs)

    mp.setattr(os, "readlink", readlink)


# ---------------------------------------------------------------------------------------------------------------
# The reader the index uses


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
def test_a_plain_file_and_a_link_inside_the_corpus_are_read(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, proc: bool
) -> None:
    if not proc:
        without_proc(monkeypatch)
    assert read_document(tree.corpus, tree.corpus / "inside.txt").text == INSIDE
    assert read_document(tree.corpus, tree.corpus / "link.txt").text == INSIDE
    assert read_document(tree.corpus, tree.corpus / "sub" / "doc.txt").text == NESTED
    data, stat = read_corpus_file(tree.corpus, tree.corpus / "link.txt")
    assert data == INSIDE.encode() and stat.st_size == len(data)


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_link_leading_outside_the_corpus_is_refused(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, attack: str, proc: bool
) -> None:
    if not proc:
        without_proc(monkeypatch)
    name, swap = ATTACKS[attack]
    swap(tree)
    with pytest.raises(Unreadable, match="outside the corpus"):
        read_document(tree.corpus, tree.corpus / name)


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_link_swapped_during_the_read_never_serves_a_file_from_outside(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, attack: str, moment: str, proc: bool
) -> None:
    if not proc:
        without_proc(monkeypatch)
    name, swap = ATTACKS[attack]
    target = tree.corpus / name
    fired = MOMENTS[moment](monkeypatch, target, lambda: swap(tree))
    try:
        text = read_document(tree.corpus, target).text
    except Unreadable as exc:
        assert "outside the corpus" in str(exc)
        text = ""
    assert "SECRET" not in text
    if moment == "before-open":  # the file opened was the outside one: refused, not read
        assert fired and text == ""


def test_a_hard_link_is_read_as_the_file_it_is(tree: Tree) -> None:
    # Trusted-corpus behaviour (see `read_corpus_file`): whoever can write into the corpus folder can copy into it
    # any file they can read, so a hard link gives nothing a copy does not. Pinned, so that a change is deliberate.
    os.link(tree.outside / "doc.txt", tree.corpus / "hard.txt")
    assert read_document(tree.corpus, tree.corpus / "hard.txt").text == SECRET


# ---------------------------------------------------------------------------------------------------------------
# GET /files/{source}: the original file, as a download


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[tuple[Served, Tree]]:
    tree = make_tree(tmp_path_factory.mktemp("symlinks"))
    settings = Settings(corpus=tree.corpus, index=tree.corpus.parent / "index")
    index, report = indexing.build(settings, encoder, progress=False)
    assert sorted(report.added) == ["inside.txt", "link.txt", "sub/doc.txt"]
    yield serve(Assistant(settings, index, encoder)), tree


def test_the_original_of_a_file_and_of_a_link_inside_is_served(files: tuple[Served, Tree]) -> None:
    served, _ = files
    for source, text in [("inside.txt", INSIDE), ("link.txt", INSIDE), ("sub/doc.txt", NESTED)]:
        r = served.client.get(f"/files/{source}")
        assert r.status_code == 200 and r.content == text.encode(), (source, r.status_code, r.text[:200])
        assert r.headers["content-disposition"] == f'attachment; filename="{Path(source).name}"'


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_original_of_a_link_now_leading_outside_is_a_404(files: tuple[Served, Tree], attack: str) -> None:
    served, tree = files
    name, swap = ATTACKS[attack]
    swap(tree)
    try:
        r = served.client.get(f"/files/{name}")
    finally:
        tree.restore()
    assert "SECRET" not in r.text
    assert_error(r, {404})


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("attack", ATTACKS)
def test_the_original_of_a_link_swapped_during_the_request_is_never_a_file_from_outside(
    files: tuple[Served, Tree], monkeypatch: pytest.MonkeyPatch, attack: str, moment: str
) -> None:
    served, tree = files
    name, swap = ATTACKS[attack]
    try:
        with monkeypatch.context() as mp:
            fired = MOMENTS[moment](mp, tree.corpus / name, lambda: swap(tree))
            r = served.client.get(f"/files/{name}")
    finally:
        tree.restore()
    assert "SECRET" not in r.text, (attack, moment)
    if moment == "before-open":  # the file opened was the outside one
        assert fired
        assert_error(r, {404})
    else:  # the swap came after the file was opened, or never (the reader resolves nothing by path after it)
        assert r.status_code == 200
