"""Streamed exports: every cell is defused, and rows leave batch by batch."""

from __future__ import annotations

import csv
import io

import pytest

from app.web.downloads import csv_cell, csv_chunks, download


@pytest.mark.parametrize("typed", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://evil")'])
def test_a_would_be_formula_is_shown_as_text(typed):
    assert csv_cell(typed) == "'" + typed


@pytest.mark.parametrize(("value", "cell"), [(None, ""), ("", ""), ("Ann", "Ann"), (42, "42"), ("a=b", "a=b")])
def test_other_values_are_left_as_they_are(value, cell):
    assert csv_cell(value) == cell


def test_the_header_then_one_chunk_per_batch_every_cell_defused():
    chunks = list(csv_chunks(["name", "note"], [[["Ann", "=cmd"]], [["Bo", None], ["Cy", "-3"]]]))
    assert len(chunks) == 3
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows == [["name", "note"], ["Ann", "'=cmd"], ["Bo", ""], ["Cy", "'-3"]]


def test_a_download_is_an_attachment_no_cache_keeps(app):
    with app.test_request_context():
        resp = download(iter(["a\n"]), "acme-members.csv")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="acme-members.csv"'
    assert resp.headers["Cache-Control"] == "no-store" and resp.mimetype == "text/csv"
