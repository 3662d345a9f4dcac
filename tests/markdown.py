"""What a Markdown file links to, which anchors it offers, and the code it quotes.

Parsed with markdown-it-py (installed with rich), so fenced code, tables and inline code are
told apart as a code host renders them, not by regular expressions over raw text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark").enable("table")


def tokens(path: Path) -> list[Token]:
    return _PARSER.parse(path.read_text(encoding="utf-8"))


def _inline_children(parsed: list[Token]) -> Iterator[Token]:
    for token in parsed:
        yield from token.children or ()


def links(path: Path) -> list[str]:
    """Every link target (``href``) in the file, in order."""
    return [
        str(child.attrGet("href"))
        for child in _inline_children(tokens(path))
        if child.type == "link_open"
    ]


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, each space a hyphen.

    Written here because the anchors plugin (mdit-py-plugins) is no dependency of headlab.
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of the file's headings, duplicates numbered ``-1``, ``-2`` as GitHub does."""
    parsed = tokens(path)
    found: set[str] = set()
    for opening, inline in itertools.pairwise(parsed):
        if opening.type != "heading_open":
            continue
        text = "".join(
            c.content for c in inline.children or () if c.type in ("text", "code_inline")
        )
        base, number = slug(text), 0
        anchor = base
        while anchor in found:
            number += 1
            anchor = f"{base}-{number}"
        found.add(anchor)
    return found


def code(path: Path) -> list[str]:
    """The text of every inline code span and fenced block."""
    parsed = tokens(path)
    spans = [c.content for c in _inline_children(parsed) if c.type == "code_inline"]
    return spans + [t.content for t in parsed if t.type in ("fence", "code_block")]


def paragraphs(path: Path) -> list[str]:
    """The raw text of every paragraph, list item, heading and table cell."""
    return [t.content for t in tokens(path) if t.type == "inline"]
