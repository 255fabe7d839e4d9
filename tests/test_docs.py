"""The documents a reader follows: every relative link and #anchor in README.md, docs/ and the model cards
resolves, and the README and model cards stay short enough to read (README <= 300 lines, a card <= 120)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "models").glob("*/MODEL_CARD.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)         # code blocks hold no links
    return [m[1] for m in LINK.finditer(text)]


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_every_relative_link_resolves(doc):
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z]+:", target):                                  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_readme_and_model_cards_stay_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    for card in (ROOT / "models").glob("*/MODEL_CARD.md"):
        assert len(card.read_text().splitlines()) <= 120, card


def test_slug_matches_github():
    assert slug("Aligning raw photos (`--align`)") == "aligning-raw-photos---align"
    assert slug("Starting from a trained network: fine-tuning, transfer learning") == \
        "starting-from-a-trained-network-fine-tuning-transfer-learning"
