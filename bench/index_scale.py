"""Benchmark: the segment index under 200,000 cameras' traffic on the real PostgreSQL (docs/benchmarks.md).

Run from the repository root:  nice .venv/bin/python bench/index_scale.py [--fill 12000000] [--write-rows 200000]

It creates its own database on 127.0.0.1:5432 (dropped at the end), migrates it with civicam's own
migrations (the index partitioned by day, migration 0008) and registers 200,000 cameras. Then:

1. Write paths, each writing the rows 200,000 cameras publish (one segment each, 6 s of the city):
   the reference is the row-at-a-time path (one ORM insert and one commit per segment, what every
   segment cost before the Indexer batched them), then the Indexer's SQLAlchemy multi-row insert,
   psycopg ``executemany`` (pipelined), one multi-row ``INSERT ... VALUES`` per batch, ``COPY`` (into
   the partitioned index and into the single table), and the hub's Indexer end to end (a freshly started
   one, and one that knows the cameras); with 1 and 2 writer processes (``--methods``: indices into
   this list). CPU is the writer processes' plus their PostgreSQL backends' (from
   /proc), so "rows per core-second" counts both ends; PostgreSQL's WAL writer and checkpointer are not
   counted (the server is shared with other sessions' tests).
2. Fill: ``--fill`` rows over 3 days (half dense: a few cameras with a 6 s segment after another; half spread
   over all 200,000 cameras), generated inside PostgreSQL, into the day
   partitioned index and into a copy of the single-table layout it replaced (same columns and indexes).
3. At that size, on both layouts: playback (one camera, one hour, LIMIT 20000 as playback does), the
   live edge (newest 5 segments), the cleaner's expiry query (500 cameras, LIMIT 50000) and its
   oldest-first query; then retiring one day: DETACH + DROP of its partition against DELETE of the same
   rows from the single table.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import psycopg
from sqlalchemy import create_engine, insert, text

from civicam.db.session import Database, upgrade
from civicam.domain.segments import segment_path
from civicam.ingest.recorder import SegmentDone
from civicam.storage.index import Indexer, add_segment, segment_row
from civicam.storage.models import Segment
from civicam.storage.partitions import day_of, ensure_days

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
TICK = os.sysconf("SC_CLK_TCK")
COLS = ("camera_id", "seq", "start", "end", "path", "bytes", "keyframes", "frames", "init_bytes", "codec",
        "width", "height", "session", "created_at")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def done_for(cam: int, start: datetime) -> SegmentDone:
    return SegmentDone(camera_id=cam, path=segment_path(cam, start), start=start, end=start + timedelta(seconds=6),
                       bytes=1_500_000, frames=150, keyframes=3, init_bytes=800, codec="h264", width=1280,
                       height=720, session="s0")


def rows_for(cams: range, start: datetime) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    out = []
    for cam in cams:
        r = segment_row(done_for(cam, start), 0)
        out.append(tuple(r[c] for c in COLS[:-1]) + (now,))
    return out


# Write paths: each takes a psycopg connection (or the URL for the ORM ones) and a list of rows ---------------

def w_orm_row(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    db = Database(url)
    for cam in cams:
        with db.session() as s:  # one insert and one commit per segment
            add_segment(s, done_for(cam, start), seq=0, open_gap_start=None)
    backend = _pool_cpu(db)
    db.close()
    return len(cams), backend


def _pool_cpu(db: Database) -> float:
    """CPU of every backend this writer process opened that its pool still holds (tagged by PGAPPNAME)."""
    with db.engine.connect() as c:
        pids = c.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                         {"a": os.environ.get("PGAPPNAME", "")}).scalars().all()
    return sum(cpu_s(int(p)) for p in pids)


def w_indexer(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    db = Database(url)
    for i in range(0, len(cams), batch):
        with db.session() as s:
            s.execute(insert(Segment), [segment_row(done_for(c, start), 0) for c in cams[i:i + batch]])
    backend = _pool_cpu(db)
    db.close()
    return len(cams), backend


_MEASURED_FROM: dict[str, float] = {}  # a method that warms up first says where its measured part began


def _indexer_run(url: str, cams: range, start: datetime, warm: bool) -> tuple[int, float]:
    """The hub's own path end to end: SegmentDone events into the Indexer thread (COPY on PostgreSQL).
    ``warm``: a first round (each camera's first segment after a start) is left out of the figures."""
    db = Database(url)
    indexer = Indexer(db, logging.getLogger("bench.indexer"))
    indexer.start()
    base = 0.0
    if warm:
        for cam in cams:
            indexer.segment(done_for(cam, start - timedelta(seconds=3)))
        indexer.flush(900)
        base = _pool_cpu(db)
        _MEASURED_FROM.update(cpu=time.process_time(), wall=time.monotonic())
    for cam in cams:
        indexer.segment(done_for(cam, start))
    indexer.flush(900)
    backend = _pool_cpu(db) - base
    indexer.close()
    db.close()
    return len(cams), backend


def w_indexer_cold(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    return _indexer_run(url, cams, start, warm=False)


def w_indexer_warm(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    return _indexer_run(url, cams, start, warm=True)


def _raw(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))


_QUOTED = ", ".join(f'"{c}"' for c in COLS)
_INSERT = f"INSERT INTO recording_segments ({_QUOTED}) VALUES "


def w_executemany(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    with _raw(url) as conn:
        pid = conn.info.backend_pid
        sql = _INSERT + "(" + ", ".join(["%s"] * len(COLS)) + ")"
        for i in range(0, len(cams), batch):
            with conn.cursor() as cur:
                cur.executemany(sql, rows_for(cams[i:i + batch], start))  # type: ignore[arg-type]
            conn.commit()
        return len(cams), cpu_s(pid)


def w_multirow(url: str, cams: range, start: datetime, batch: int) -> tuple[int, float]:
    one = "(" + ", ".join(["%s"] * len(COLS)) + ")"
    with _raw(url) as conn:
        pid = conn.info.backend_pid
        for i in range(0, len(cams), batch):
            rows = rows_for(cams[i:i + batch], start)
            conn.execute(_INSERT + ", ".join([one] * len(rows)), [v for r in rows for v in r])  # type: ignore[arg-type]
            conn.commit()
        return len(cams), cpu_s(pid)


def w_copy(url: str, cams: range, start: datetime, batch: int, table: str = "recording_segments") -> tuple[int, float]:
    cols = _QUOTED
    with _raw(url) as conn:
        pid = conn.info.backend_pid
        for i in range(0, len(cams), batch):
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:  # type: ignore[arg-type]
                for row in rows_for(cams[i:i + batch], start):
                    cp.write_row(row)
            conn.commit()
        return len(cams), cpu_s(pid)


METHODS: dict[str, Callable[[str, range, datetime, int], tuple[int, float]]] = {
    "row at a time (ORM, commit each) [reference]": w_orm_row,
    "the Indexer before COPY (SQLAlchemy multi-row insert)": w_indexer,
    "psycopg executemany (pipelined)": w_executemany, "multi-row INSERT VALUES": w_multirow, "COPY": w_copy,
    "COPY into the single table (no partitions)": lambda u, c, s, b: w_copy(u, c, s, b, "plain_segments"),
    "the Indexer now, first segment of each camera after a start": w_indexer_cold,
    "the Indexer now, steady state (cameras known)": w_indexer_warm,
}


def _worker(args: tuple[str, str, range, datetime, int], out: mp.Queue) -> None:  # type: ignore[type-arg]
    name, url, cams, start, batch = args
    os.environ["PGAPPNAME"] = f"civicam-bench-{os.getpid()}"  # libpq tags this process's connections
    t_cpu, t_wall = time.process_time(), time.monotonic()
    n, backend = METHODS[name](url, cams, start, batch)
    t_cpu = _MEASURED_FROM.get("cpu", t_cpu)
    out.put((n, backend, time.process_time() - t_cpu, time.monotonic() - _MEASURED_FROM.get("wall", t_wall)))


def _warmed(name: str) -> bool:
    return METHODS[name] is w_indexer_warm


def measure_write(name: str, url: str, total: int, writers: int, start: datetime, batch: int) -> dict[str, float]:
    """``total`` rows (one per camera) by ``writers`` processes, each its own cameras."""
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    per = total // writers
    procs = [ctx.Process(target=_worker, args=((name, url, range(1 + k * per, 1 + (k + 1) * per), start, batch), out))
             for k in range(writers)]
    t = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    wall = time.monotonic() - t
    for p in procs:
        p.join()
    if _warmed(name):  # the writers' own clocks, from the end of their warm-up
        wall = max(w for _, _, _, w in results)
    backend = sum(r[1] for r in results)
    client = sum(r[2] for r in results)
    rows = sum(r[0] for r in results)
    return {"rows": rows, "wall": wall, "rows_s": rows / wall, "cpu": client + backend,
            "per_core": rows / max(1e-9, client + backend), "client": client, "backend": backend}


_FILL = """INSERT INTO {table} (camera_id, seq, start, "end", path, bytes, keyframes, frames, init_bytes, codec,
        width, height, session, created_at)
      SELECT c, k, s, s + interval '6 seconds',
        'cam' || lpad(c::text, 8, '0') || '/' || to_char(s AT TIME ZONE 'UTC', 'YYYY/MM/DD/HH24') || '/'
          || to_char(s AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US') || 'Z.mp4',
        1500000, 3, 150, 800, 'h264', 1280, 720, 's0', now()
      FROM generate_series(%(c0)s::int, %(c1)s::int) c, generate_series(%(k0)s::int, %(k1)s::int) k,
           LATERAL (SELECT %(t0)s::timestamptz
                    + make_interval(secs => k * %(step)s::float8 + (c %% 997) * 0.006) s) x"""


def dense_cameras(rows: int, days: int) -> int:
    """Half the fill is cameras recorded densely (a 6 s segment after another for ``days``)."""
    return max(1, rows // 2 // (days * 14400))


def fill(url: str, rows: int, cameras: int, days: int, table: str) -> float:
    """Half of ``rows`` as dense cameras 1..D (6 s segments for ``days`` days: what playback reads), half
    spread thinly over all ``cameras`` (the index's breadth: every camera has rows every day)."""
    dense = dense_cameras(rows, days)
    sparse_per_cam = max(1, rows // 2 // cameras)
    t = time.monotonic()
    with _raw(url) as conn:
        per_chunk = 14400  # one day of one camera's segments per statement step
        for c in range(1, dense + 1):
            for d in range(days):
                conn.execute(_FILL.format(table=table), {  # type: ignore[arg-type]
                    "c0": c, "c1": c, "k0": d * per_chunk, "k1": (d + 1) * per_chunk - 1, "t0": T0, "step": 6})
            conn.commit()
        step = days * 86400 / sparse_per_cam
        for k in range(sparse_per_cam):
            conn.execute(_FILL.format(table=table), {  # type: ignore[arg-type]
                "c0": dense + 1, "c1": cameras, "k0": k, "k1": k, "t0": T0 + timedelta(seconds=3), "step": step})
            conn.commit()
        conn.execute(f"ANALYZE {table}")  # type: ignore[arg-type]
        conn.commit()
    return time.monotonic() - t


def timed(conn: psycopg.Connection[tuple[object, ...]], sql: str, params: object, n: int) -> tuple[float, int]:
    """Median ms of ``n`` runs (params may be a callable of the run index) and the rows of the last."""
    times, got = [], 0
    for i in range(n):
        p = params(i) if callable(params) else params  # type: ignore[operator]
        t = time.perf_counter()
        got = len(conn.execute(sql, p).fetchall())  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), got


def queries(url: str, table: str, cameras: int, days: int, dense: int) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    mid = T0 + timedelta(days=days / 2)
    with _raw(url) as conn:
        cols = 'id, camera_id, start, "end", path, bytes, session, seq'
        out["playback: 1 dense camera, 1 hour"] = timed(
            conn, f'SELECT {cols} FROM {table} WHERE camera_id = %(c)s AND "end" > %(a)s AND start < %(b)s '
                  "ORDER BY start LIMIT 20000",
            lambda i: {"c": 1 + i % dense, "a": mid + timedelta(minutes=i), "b": mid + timedelta(minutes=i + 60)}, 200)  # type: ignore[arg-type]
        out["playback: 1 dense camera, 1 day"] = timed(
            conn, f'SELECT {cols} FROM {table} WHERE camera_id = %(c)s AND "end" > %(a)s AND start < %(b)s '
                  "ORDER BY start LIMIT 20000",
            lambda i: {"c": 1 + i % dense, "a": mid - timedelta(hours=12), "b": mid + timedelta(hours=12)}, 40)  # type: ignore[arg-type]
        out["live edge: newest 5 of 1 camera (dense)"] = timed(
            conn, f"SELECT {cols} FROM {table} WHERE camera_id = %(c)s ORDER BY start DESC LIMIT 5",
            lambda i: {"c": 1 + i % dense}, 200)  # type: ignore[arg-type]
        cutoff = T0 + timedelta(days=1)
        out["retention: expired of 500 cameras, LIMIT 50000"] = timed(
            conn, f'SELECT id, camera_id, start, "end", bytes FROM {table} WHERE camera_id = ANY(%(c)s) '
                  'AND start < %(t)s AND "end" <= %(t)s ORDER BY start LIMIT 50000',
            lambda i: {"c": list(range(1 + i * 500, 501 + i * 500)), "t": cutoff}, 5)  # type: ignore[arg-type]
        out["retention: oldest first, LIMIT 50000"] = timed(
            conn, f'SELECT id, camera_id, start, "end", bytes FROM {table} ORDER BY start, id LIMIT 50000', {}, 3)
    return out


def retire_day(url: str, partitioned: bool, table: str) -> tuple[float, int]:
    """Remove the first day's rows: DETACH + DROP of its partition, or DELETE from the single table."""
    end = T0 + timedelta(days=1)
    with _raw(url) as conn:
        if partitioned:
            name = f"recording_segments_p{T0:%Y%m%d}"
            n = int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[arg-type, index]
            t = time.perf_counter()
            conn.execute(f"ALTER TABLE recording_segments DETACH PARTITION {name}")  # type: ignore[arg-type]
            conn.execute(f"DROP TABLE {name}")  # type: ignore[arg-type]
            conn.commit()
        else:
            t = time.perf_counter()
            cur = conn.execute(f"DELETE FROM {table} WHERE start < %(e)s", {"e": end})  # type: ignore[arg-type]
            n = cur.rowcount
            conn.commit()
        return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=200_000)
    ap.add_argument("--write-rows", type=int, default=200_000, help="rows per write trial (one per camera)")
    ap.add_argument("--reference-rows", type=int, default=5_000, help="rows for the slow row-at-a-time path")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--fill", type=int, default=3_000_000)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--writers", default="1,2")
    ap.add_argument("--methods", default="", help="comma-separated indices into the method list (default all)")
    args = ap.parse_args()
    name = f"civicam_bench_index_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = URL.format(name=name)
    load0 = os.getloadavg()
    try:
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        with _raw(url) as conn:
            conn.execute("INSERT INTO regions (id, name, created_at) VALUES (1, 'city', now())")
            conn.execute("INSERT INTO sites (id, region_id, name, contact_name, contact_email, created_at) "
                         "VALUES (1, 1, 'all', 'x', 'x@example.org', now())")
            conn.execute("INSERT INTO cameras (id, site_id, name, url, status, created_at) SELECT c, 1, 'cam' || c, "
                         "'rtsp://127.0.0.1/' || c, 'accepted', now() FROM generate_series(1, %s) c",
                         (args.cameras,))
            # The single-table layout the partitions replaced (migration 0005's shape), for comparison.
            conn.execute("CREATE TABLE plain_segments (LIKE recording_segments INCLUDING DEFAULTS)")
            conn.execute("ALTER TABLE plain_segments ADD PRIMARY KEY (id), ADD UNIQUE (path), "
                         "ADD FOREIGN KEY (camera_id) REFERENCES cameras (id) ON DELETE CASCADE")
            conn.execute("CREATE INDEX ON plain_segments (camera_id, start)")
            conn.execute("CREATE INDEX ON plain_segments (start)")
            conn.commit()
        engine = create_engine(url)
        ensure_days(engine, [day_of(T0 + timedelta(days=d)) for d in range(-1, args.days + 2)])
        engine.dispose()

        print(f"# index at scale: {args.cameras} cameras, PostgreSQL {_server_version(url)}, "
              f"{os.cpu_count()} cores, load {load0[0]:.1f}")
        writers = [int(w) for w in args.writers.split(",")]
        names = list(METHODS)
        chosen = [names[int(i)] for i in args.methods.split(",")] if args.methods else names
        print("\n| write path | writers | rows | rows/s | rows per core-second (writer + backend CPU) | x reference |")
        print("|---|---|---|---|---|---|")
        ref = None
        slot = 0
        for m in chosen:
            for w in writers if "reference" not in m else [1]:
                total = args.reference_rows if "reference" in m else args.write_rows
                start = T0 + timedelta(days=args.days, seconds=6 * slot)  # its own time slot: no path clash
                slot += 1
                r = measure_write(m, url, total, w, start, args.batch)
                if ref is None:
                    ref = r["rows_s"]
                print(f"| {m} | {w} | {r['rows']:.0f} | {r['rows_s']:,.0f} | {r['per_core']:,.0f} | "
                      f"{r['rows_s'] / ref:.1f}x |", flush=True)
        print(f"\nfill: {args.fill:,} rows over {args.days} days", flush=True)
        with _raw(url) as conn:
            conn.execute("TRUNCATE recording_segments, plain_segments")
            conn.commit()
        for table in ("recording_segments", "plain_segments"):
            secs = fill(url, args.fill, args.cameras, args.days, table)
            print(f"- {table}: {secs:.0f} s ({args.fill / secs:,.0f} rows/s, INSERT ... SELECT in the server)",
                  flush=True)
        dense = dense_cameras(args.fill, args.days)
        print(f"  ({dense} cameras with a segment every 6 s for {args.days} days, the rest spread over all "
              f"{args.cameras:,} cameras)")
        qa = queries(url, "recording_segments", args.cameras, args.days, dense)
        qb = queries(url, "plain_segments", args.cameras, args.days, dense)
        print("\n| query at size | partitioned by day: ms (rows) | single table: ms (rows) |")
        print("|---|---|---|")
        for k in qa:
            print(f"| {k} | {qa[k][0]:.2f} ({qa[k][1]}) | {qb[k][0]:.2f} ({qb[k][1]}) |")
        ta, na = retire_day(url, True, "recording_segments")
        tb, nb = retire_day(url, False, "plain_segments")
        print(f"| retire one day ({na:,} rows) | {ta * 1000:.0f} ms (DETACH + DROP) | "
              f"{tb * 1000:.0f} ms (DELETE, {nb:,} rows, {nb / tb:,.0f} rows/s) |")
        load1 = os.getloadavg()
        print(f"\nload average before {load0[0]:.1f}, after {load1[0]:.1f}")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _server_version(url: str) -> str:
    with _raw(url) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


if __name__ == "__main__":
    main()
