"""The baselines of bench.bundle: an organisation's audit entries written to a zip with raw psycopg.

Run by bench.bundle in a process of its own, so that its memory is measured apart:
  python -m bench.raw_export DATABASE_URL ORGANISATION_ID stream|all OUT
It imports, connects, prints "ready" and waits for a line on stdin (the measure starts
there), then reads every entry of the organisation's chains and its cases' (the scope
of an organisation's evidence bundle), one JSON line each in a deflated zip member:
`stream` through a server-side cursor, `all` by `fetchall()` first. It prints how many
entries it wrote, and
ends on the next line on stdin.
"""

from __future__ import annotations

import json
import sys
import zipfile
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.audit.projection import ENTRY_COLUMNS

_QUERY = (
    f"SELECT entry_id, {ENTRY_COLUMNS} FROM casebook_audit_entries "
    "WHERE (stream = 'organisation' AND subject = %(organisation)s) OR (stream IN ('case', 'sla') "
    "AND subject IN (SELECT case_id FROM casebook_audit_entries "
    "WHERE stream = 'case' AND organisation_id = %(organisation)s)) "
    "ORDER BY stream, subject, seq"
)
_ITERSIZE = 2_000


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, default=str, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def main(url: str, organisation: str, mode: str, out: str) -> None:
    if mode not in ("stream", "all"):
        raise SystemExit(f"raw_export: mode must be stream or all, not {mode!r}")
    with psycopg.connect(url, row_factory=dict_row) as conn, conn.transaction():
        conn.execute("SELECT 1")
        print("ready", flush=True)
        sys.stdin.readline()
        written = 0
        with (
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open("entries.jsonl", "w", force_zip64=True) as member,
        ):
            if mode == "stream":
                with conn.cursor(name="raw_export") as cursor:
                    cursor.itersize = _ITERSIZE
                    cursor.execute(_QUERY, {"organisation": organisation})
                    for entry in cursor:
                        member.write(_line(entry))
                        written += 1
            else:
                entries = conn.execute(_QUERY, {"organisation": organisation}).fetchall()
                for entry in entries:
                    member.write(_line(entry))
                    written += 1
    print(written, flush=True)
    sys.stdin.readline()  # bench.bundle reads this process's peak before it ends


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(
            "usage: python -m bench.raw_export DATABASE_URL ORGANISATION_ID stream|all OUT"
        )
    main(*sys.argv[1:])
