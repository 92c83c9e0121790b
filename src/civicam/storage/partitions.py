"""Day partitions of the segment index on PostgreSQL: created on demand, retired whole by retention.

At city scale (200,000 cameras, 1.7-4.3 billion segment rows a day) deleting expired rows one by one is a
second write load as large as recording itself; a day whose every row has expired and is not held is
instead detached (one catalogue change: no reader sees its rows any more), its files deleted page by
page, and the table dropped. A detached day survives a crash and is finished by the next pass.
SQLite keeps one table and none of this applies (``partitioned`` is false there).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from civicam.domain.retention import HoldSpan

PARENT = "recording_segments"
_NAME = re.compile(r"^recording_segments_p(\d{8})$")
_known: dict[str, set[date]] = {}  # engine URL -> days known to have a partition (they are never re-made)
_lock = threading.Lock()
LOCK_TIMEOUT_MS = 2000


def is_partition(name: str | None) -> bool:
    """Whether a reflected table is one of the index's partitions (the models describe only the parent)."""
    return bool(name) and (name == f"{PARENT}_default" or bool(_NAME.match(name or "")))


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: compare the schema without the partitions."""
    return not (type_ == "table" and is_partition(name))


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_of(moment: datetime) -> date:
    """The UTC day a segment starting at ``moment`` is stored under."""
    return moment.astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def partitioned(conn: Connection | Engine) -> bool:
    """Whether this database keeps segments in day partitions (PostgreSQL after migration 0008)."""
    return conn.dialect.name == "postgresql"


def _create_sql(day: date) -> str:
    start, end = day_bounds(day)
    return (f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {PARENT} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")


def ensure_days(engine: Engine, days: Iterable[date]) -> None:
    """Make sure each day has its partition, each in its own committed transaction.

    Run on a connection of its own so the caller's transaction (the writer's batch) is never aborted by a
    concurrent writer creating the same day first: that error is caught and the day re-checked. Call it
    with no transaction of this thread open on the index (creating a partition locks the parent table):
    the short lock timeout turns such a mistake, or a long reader, into a logged miss rather than a hang;
    rows of a day that could not be made go to the default partition and stay correct.
    """
    if not partitioned(engine):
        return
    key = engine.url.render_as_string(hide_password=True)
    with _lock:
        known = _known.setdefault(key, set())
        missing = sorted(set(days) - known)
    if not missing:
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
        for day in missing:
            try:
                conn.execute(text(_create_sql(day)))
            except DBAPIError as exc:
                # Another process made it between our check and create (duplicate table), or the lock
                # was not had in time, or the default partition already holds rows of that day.
                exists = conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"),
                                      {"n": partition_name(day)}).scalar_one()
                if not exists:
                    logger = logging.getLogger("civicam.storage.partitions")
                    logger.warning("no partition for %s yet (%s); its rows go to the default partition",
                                   day.isoformat(), str(exc.orig).splitlines()[0] if exc.orig else exc)
                    continue
            with _lock:
                known.add(day)


def forget(engine: Engine) -> None:
    """Drop what this process believes exists (after a partition was retired, or in tests)."""
    with _lock:
        _known.pop(engine.url.render_as_string(hide_password=True), None)


@dataclass(frozen=True)
class DayTable:
    day: date
    name: str
    attached: bool


def day_tables(conn: Connection) -> list[DayTable]:
    """Every day table, attached or left detached by an interrupted retirement, oldest first."""
    rows = conn.execute(text(
        "SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE i.inhrelid = c.oid AND p.relname = :parent) "
        "FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE :like AND c.relnamespace = "
        "to_regnamespace(current_schema())"), {"parent": PARENT, "like": f"{PARENT}_p%"}).tuples().all()
    out = []
    for name, attached in rows:
        m = _NAME.match(name)
        if m:
            out.append(DayTable(datetime.strptime(m.group(1), "%Y%m%d").date(), name, bool(attached)))
    return sorted(out, key=lambda t: t.day)


def retirable(tables: list[DayTable], oldest_kept: datetime, holds: list[HoldSpan]) -> list[DayTable]:
    """Attached days that end at or before ``oldest_kept`` (every row in them has expired under the longest
    rule) and overlap no active hold; a pure decision."""
    out = []
    for t in tables:
        start, end = day_bounds(t.day)
        if not t.attached or end > oldest_kept:
            continue
        if any(h.start < end and h.end > start for h in holds):
            continue
        out.append(t)
    return out


def retire(engine: Engine, table: DayTable, delete_file: Callable[[int, str], None], logger: logging.Logger,
           limit: int) -> tuple[int, bool]:
    """Detach ``table`` (if still attached), delete up to ``limit`` of its files and their rows; drop it once
    empty. Returns (files deleted, finished). Rows leave the index before their files, as everywhere."""
    if table.attached:
        with engine.begin() as conn:
            # A brief exclusive lock on the parent; waiting long would stall the writers behind it.
            conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
            conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {table.name}"))
    done = 0
    while done < limit:
        with engine.begin() as conn:
            page = conn.execute(text(f"SELECT id, path FROM {table.name} ORDER BY id LIMIT :n"),
                                {"n": min(1000, limit - done)}).tuples().all()
            if not page:
                conn.execute(text(f"DROP TABLE {table.name}"))
                forget(engine)
                logger.info("retention dropped the day %s", table.day.isoformat())
                return done, True
            for seg_id, path in page:
                delete_file(int(seg_id), str(path))
            conn.execute(text(f"DELETE FROM {table.name} WHERE id = ANY(:ids)"), {"ids": [i for i, _ in page]})
            done += len(page)
    return done, False
