"""Keep the capability table in ``docs/coercion.md`` in step with the registry.

A maintainer's tool, not part of the installed package. The table itself comes from
:mod:`langchain_imagegen.model_table` (``langchain-imagegen models`` prints the same table);
this script replaces the copy between :data:`TABLE_START` and :data:`TABLE_END`. From the
repository root::

    python scripts/capabilities.py --write docs/coercion.md

Without arguments it prints the table. ``tests/unit_tests/test_docs_coercion.py`` runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_imagegen.model_table import capability_table_markdown

__all__ = ["TABLE_END", "TABLE_START", "main", "replace_table"]

TABLE_START = "<!-- capability-table:start -->"
TABLE_END = "<!-- capability-table:end -->"


def replace_table(document: str, table: str) -> str:
    """``document`` with the text between the markers replaced by ``table``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start = document.find(TABLE_START)
    end = document.find(TABLE_END)
    if start < 0 or end < start:
        msg = f"expected {TABLE_START} ... {TABLE_END} in the document"
        raise ValueError(msg)
    head = document[: start + len(TABLE_START)]
    return f"{head}\n{table}\n{document[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or with ``--write FILE`` refresh it between the markers in FILE."""
    parser = argparse.ArgumentParser(
        prog="python scripts/capabilities.py",
        description="Print the per-model capability table, or refresh it inside a document.",
    )
    parser.add_argument(
        "--write",
        metavar="FILE",
        type=Path,
        help=f"replace the table between {TABLE_START} and {TABLE_END} in FILE",
    )
    args = parser.parse_args(argv)
    table = capability_table_markdown()
    if args.write is None:
        sys.stdout.write(table + "\n")
        return 0
    path: Path = args.write
    before = path.read_text(encoding="utf-8")
    try:
        after = replace_table(before, table)
    except ValueError as exc:
        parser.error(f"{path}: {exc}")
    if after != before:
        path.write_text(after, encoding="utf-8")
        sys.stdout.write(f"updated the capability table in {path}\n")
    else:
        sys.stdout.write(f"{path} is up to date\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
