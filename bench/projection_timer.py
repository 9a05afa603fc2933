"""Part (3) of bench/projection.py: one SLA timer tick with 100,000 open clocks.

The clocks (one initial-response clock per open case) are written with COPY. Clock i
turns at risk at BASE + i seconds and is breached a day later, so a tick at BASE + k
seconds finds exactly the clocks between the previous tick's k and this one due: every
tick marks fresh rows and commits, as the live timer does. Per round: 1 % of the clocks
due, then 0.1 %, then nothing; each time the raw indexed `SELECT ... WHERE next_due_at
<= now` of the due rows, then `SlaTimer.tick` (one statement: lock the due clocks, join
their cases, advance them, save clocks, history and outbox rows; commit).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from casebook.database import Database
from projections.sla import store
from projections.sla.timer import SlaTimer

BASE = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ORGANISATION = uuid.UUID(int=1)


def fill(database: Database, clocks: int) -> None:
    """`clocks` open cases with one running clock each, written with COPY."""
    target = timedelta(hours=24)
    with psycopg.connect(database.url) as conn, conn.cursor() as cursor:
        ids = [uuid.UUID(int=(7 << 64) + i) for i in range(clocks)]
        with cursor.copy(
            "COPY casebook_sla_cases (case_id, organisation_id, category, severity, status, "
            "opened_at, due_at, version) FROM STDIN"
        ) as copy:
            for i, case_id in enumerate(ids):
                at_risk = BASE + timedelta(seconds=i, milliseconds=500)
                opened = at_risk - target * 0.8
                copy.write_row(
                    (case_id, ORGANISATION, "technical", "B", "open", opened, opened + target, 2)
                )
        with cursor.copy(
            f"COPY casebook_sla_clocks ({store.CLOCK_COLUMNS}, category, next_due_at) FROM STDIN"
        ) as copy:
            for i, case_id in enumerate(ids):
                at_risk = BASE + timedelta(seconds=i, milliseconds=500)
                opened = at_risk - target * 0.8
                copy.write_row(
                    (
                        case_id,
                        "initial_response",
                        "B",
                        "2025.1",
                        opened,
                        target.total_seconds(),
                        "24x7",
                        "24 hours, around the clock",
                        opened + target,
                        at_risk,
                        False,
                        "running",
                        None,
                        None,
                        None,
                        1,
                        True,
                        None,
                        "technical",
                        at_risk,
                    )
                )
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE casebook_sla_cases")
        conn.execute("VACUUM ANALYZE casebook_sla_clocks")


def raw_select(conn: psycopg.Connection[Any], now: datetime) -> tuple[float, int]:
    """The indexed select of the due clocks alone: ms, rows."""
    began = time.perf_counter()
    rows = conn.execute(
        f"SELECT {store.CLOCK_COLUMNS} FROM casebook_sla_clocks "
        "WHERE next_due_at <= %s ORDER BY next_due_at",
        (now,),
    ).fetchall()
    return (time.perf_counter() - began) * 1000, len(rows)


def tick(conn: psycopg.Connection[Any], now: datetime) -> tuple[float, int]:
    """One `SlaTimer.tick` at `now`: ms, transitions made."""
    timer = SlaTimer(conn.info.dsn, clock=lambda: now)
    began = time.perf_counter()
    made = timer.tick(conn)
    return (time.perf_counter() - began) * 1000, made


def part_timer(args: argparse.Namespace, database: Database) -> dict[str, Any]:
    """(3): fill, then per round: raw select and tick with 1 % due, with 0.1 %, with none."""
    fill(database, args.clocks)
    shares = {"": max(1, args.clocks // 100), "_small": max(1, args.clocks // 1000)}
    figures: dict[str, list[float]] = {
        f"{side}{suffix}": [] for side in ("raw", "tick") for suffix in (*shares, "_idle")
    }
    marked = 0  # clocks 0 .. marked - 1 are at risk already
    with psycopg.connect(database.url, autocommit=True) as conn:
        for r in range(args.rounds):
            for suffix, due in shares.items():
                marked += due
                now = BASE + timedelta(seconds=marked)
                ms, rows = raw_select(conn, now)
                if rows != due:
                    raise RuntimeError(f"round {r}: {rows} clocks due, not {due}")
                figures[f"raw{suffix}"].append(ms)
                ms, made = tick(conn, now)
                if made != due:
                    raise RuntimeError(f"round {r}: the tick made {made} transitions, not {due}")
                figures[f"tick{suffix}"].append(ms)
            figures["raw_idle"].append(raw_select(conn, now)[0])
            figures["tick_idle"].append(tick(conn, now)[0])
    return {"clocks": args.clocks, "due": shares[""], "due_small": shares["_small"], **figures}


def report_timer(results: dict[str, Any]) -> None:
    med = {k: statistics.median(v) for k, v in results.items() if isinstance(v, list)}
    print(
        f"(3) timer tick, {results['clocks']} open clocks; each due clock is marked at risk, "
        "its history and outbox rows written, committed"
    )
    for suffix, label in (("", f"{results['due']} due (1 %)"),
                          ("_small", f"{results['due_small']} due (0.1 %)"),
                          ("_idle", "nothing due")):  # fmt: skip
        raw, tick = med[f"raw{suffix}"], med[f"tick{suffix}"]
        target = "  (target <= 100 ms)" if not suffix else ""
        print(
            f"    {label:17} raw indexed SELECT {raw:6.1f} ms   SlaTimer.tick {tick:6.1f} ms"
            f"   {tick / raw:5.1f}x{target}"
        )
        for side in ("raw", "tick"):
            values = ", ".join(f"{v:.1f}" for v in results[f"{side}{suffix}"])
            print(f"        {side} per round (ms): {values}")
