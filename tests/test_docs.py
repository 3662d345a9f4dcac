"""The user docs keep their promises: the README opens with install, train and test, every
relative link and anchor resolves, and every file path and ``headlab.*`` name they quote
exists in this tree (module moves leave no stale path behind)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.markdown import anchors, code, links, paragraphs, slug

README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
DOCS = sorted((ROOT / "docs").glob("*.md"))
#: written by other engineers in the same release: a link to one is fine before it exists
PLANNED = {
    f"docs/{name}.md"
    for name in ("statistics", "off_distribution", "own_data", "search", "tensorboard")
} | {"docs/architecture.md"}
#: lists old names on purpose; checked by test_changes_name_gone_old_and_existing_new
CHANGES = ROOT / "docs" / "changes.md"
PATH = re.compile(r"(?<![\w./-])((?:src|tests|configs|scripts|benchmarks|docs|\.ci)/[\w./-]*)")
NAME = re.compile(r"(?<![\w.])(headlab(?:\.\w+)+)")


def test_readme_opens_with_install_train_and_both_test_tiers():
    first = [line.split("#")[0].strip() for line in README.read_text().splitlines()[:40]]
    for command in ('pip install -e ".[dev]"', "python scripts/train.py", "pytest -n auto"):
        assert command in first, command
    assert 'pytest -m "not slow" -n auto' in first
    # CI runs the README's test command (.ci/run)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert [line for line in ci if line.startswith("pytest")] == ["pytest -n auto"]


def test_readme_stays_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_slug_matches_github_anchors():
    assert slug("Head \u00d7 data") == "head--data"
    assert slug("Evaluate a checkpoint") == "evaluate-a-checkpoint"
    assert slug("`test/map` (0.5)") == "testmap-05"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for href in links(page):
        if re.match(r"[a-z]+:", href):
            continue  # http:, https:, mailto:
        target, _, anchor = href.partition("#")
        path = (page.parent / target).resolve() if target else page
        relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if not path.exists():
            if relative not in PLANNED or anchor:
                broken.append(f"{href}: no such file")
        elif anchor and anchor not in anchors(path):
            broken.append(f"{href}: no heading #{anchor} in {relative}")
    assert not broken, broken


def resolves(name: str) -> bool:
    """``name`` is a module of this tree, or an attribute of one."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def quoted(page: Path, pattern: re.Pattern[str]) -> set[str]:
    found = {m.group(1).rstrip(".") for text in code(page) for m in pattern.finditer(text)}
    return {f for f in found if not re.search(r"[<*]|\.\.\.|…", f)}


@pytest.mark.parametrize(
    "page", [README, *(d for d in DOCS if d != CHANGES)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_quoted_paths_and_modules_exist(page: Path):
    missing = sorted(p for p in quoted(page, PATH) if not (ROOT / p).exists() and p not in PLANNED)
    unknown = sorted(n for n in quoted(page, NAME) if not resolves(n))
    assert not missing and not unknown, (missing, unknown)


def test_changes_name_gone_old_and_existing_new():
    notes = [text for text in paragraphs(CHANGES) if "→" in text]
    assert notes
    for note in notes:
        old, new = (re.findall(r"`([^`]+)`", side) for side in note.split("→", 1))
        for span in old:  # only spans that are one name or one path, not commands
            if NAME.fullmatch(span):
                stale = ROOT / "src" / Path(*span.split(".")).with_suffix(".py")
                assert not stale.exists(), f"{span} is listed as moved but {stale} exists"
            if PATH.fullmatch(span):
                assert not (ROOT / span).exists(), f"{span} is listed as moved but exists"
        for span in new:
            if NAME.fullmatch(span):
                assert resolves(span), f"{span}: the new name does not resolve"
            if PATH.fullmatch(span):
                assert (ROOT / span).exists(), f"{span}: the new path does not exist"


def test_performance_table_has_the_columns_bench_prints():
    from benchmarks.timing import results_table

    header = results_table([], None).splitlines()[2]  # after the machine line and a blank
    assert header.startswith("| model |")
    assert header in (ROOT / "docs" / "performance.md").read_text(encoding="utf-8").splitlines()


#: a scratch folder given as where results live, or the history of how the text came about
SCRATCH_OR_HISTORY = re.compile(
    r"/tmp/|\b[Ii]ssues? ?#?\d+|\bthe issue(?:'s)?\b|\bin the issue\b|\bthis session\b"
)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_scratch_paths_or_issue_history(page: Path):
    """Docs say what is, with commands a reader can run: no /tmp folders of one session, no
    'issue 18' or 'the issue describes' (the reader never saw it)."""
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if SCRATCH_OR_HISTORY.search(line)
    ]
    assert found == []


def options(group: str) -> set[str]:
    return {p.stem for p in (ROOT / "configs" / group).glob("*.yaml")}


def table_rows(page: Path, first_header: str) -> list[list[str]]:
    """The rows of the first table whose first header cell is ``first_header``, as cells."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("|") and line.strip("|").split("|")[0].strip() == first_header
    )
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def names(cell: str) -> set[str]:
    return set(re.findall(r"`([\w.=-]+)`", cell))


@pytest.mark.parametrize("group", ["data", "head", "model", "trainer", "logger", "experiment"])
def test_configuration_lists_every_option_of_a_group(group: str):
    rows = {names(r[0]).pop(): r[1] for r in table_rows(DOCS_DIR / "configuration.md", "group")}
    assert names(rows[group]) >= options(group)


def test_readme_tables_list_every_head_and_data_set_and_what_fits():
    from headlab.heads import HEADS

    heads, data = options("head"), options("data")
    assert {c[0].strip("`").split("`")[0] for c in table_rows(README, "`head=`")} == heads
    assert {c[0].strip("`").split("`")[0] for c in table_rows(README, "`data=`")} == data
    header = next(
        line for line in README.read_text().splitlines() if line.startswith("| | `mnist`")
    )
    columns = [names(c) for c in header.strip("|").split("|")[1:]]
    assert set().union(*columns) == data
    kinds = ("index", "multi_hot", "distribution")  # the columns' target kinds, in order
    fits = {
        row[0].strip("`"): [cell != "error" for cell in row[1:]]
        for row in table_rows(README, "")
        if row[0].startswith("`")
    }
    assert fits == {h: [k in HEADS[h].accepts for k in kinds] for h in heads}
    csv_heads = next(
        r[3] for r in table_rows(DOCS_DIR / "own_data.md", "layout") if "image_csv" in r[1]
    )
    assert names(csv_heads) == {h for h in heads if "multi_hot" in HEADS[h].accepts}


def test_every_status_a_run_records_is_documented():
    source = (ROOT / "src" / "headlab" / "run" / "outcome.py").read_text()
    statuses = {"completed", *re.findall(r'"status": "(\w+)"', source)}
    assert statuses == {"completed", "failed", "interrupted", "pruned"}
    for page, before in ((DOCS_DIR / "operations.md", "Exit codes"), (README, "what each failure")):
        text = page.read_text(encoding="utf-8")
        sentence = text[text.index("`status`") : text.index(before)]
        assert names(sentence) >= statuses, page.name
