"""Streamed downloads: every export answers through here.

An export is a generator of text chunks sent as it is produced, so the
largest organization's data never sits in memory; ``download`` wraps it as
an attachment that no cache keeps. CSV cells pass ``csv_cell``, the guard
against spreadsheet formula injection, whatever the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from flask import Response

# A spreadsheet reads a cell starting with one of these as a formula (or
# strips the character and reads what follows as one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """``value`` as CSV cell text (``None``: empty) that a spreadsheet shows as
    data, never runs: a leading ``'`` defuses a would-be formula."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def csv_chunks(header: Iterable[str], batches: Iterable[Iterable[Iterable]]) -> Iterator[str]:
    """The header line, then one chunk of CSV text per batch of rows, every
    cell through ``csv_cell``."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def drain() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    writer.writerow(header)
    yield drain()
    for batch in batches:
        for row in batch:
            writer.writerow([csv_cell(v) for v in row])
        yield drain()


def download(chunks: Iterable[str], filename: str, mimetype: str = "text/csv") -> Response:
    """A streamed attachment named ``filename``, never stored by a cache."""
    return Response(
        chunks,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
