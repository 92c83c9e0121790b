"""The segment index: a single writer thread batching inserts, and the queries playback and retention use."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from civicam.db.base import utcnow
from civicam.db.session import Database
from civicam.domain.segments import SegmentDone
from civicam.storage.models import Gap, Hold, Segment
from civicam.storage.partitions import day_of, ensure_days, partitioned


@dataclass(frozen=True)
class _GapOp:
    camera_id: int
    start: datetime
    reason: str
    detail: str


@dataclass(frozen=True)
class _ForgetOp:
    camera_id: int


def next_seq(session: Session, camera_id: int) -> int:
    """The sequence number the camera's next segment gets."""
    last = session.execute(select(func.max(Segment.seq)).where(Segment.camera_id == camera_id)).scalar_one()
    return 0 if last is None else int(last) + 1


_LOOK_UP = object()  # add_segment's "open gap unknown: query it" marker


def add_segment(session: Session, done: SegmentDone, seq: int | None = None,
                open_gap_start: datetime | None | object = _LOOK_UP) -> Segment:
    """Insert one segment row and close the camera's open gap at its start.

    ``open_gap_start`` lets the one writer that already knows whether a gap is open (the Indexer) skip the
    query: it was a quarter of the recorder's CPU at 50 cameras.
    """
    seq = next_seq(session, done.camera_id) if seq is None else seq
    row = Segment(**segment_row(done, seq))
    session.add(row)
    gap_start = _open_start(session, done.camera_id) if open_gap_start is _LOOK_UP else open_gap_start
    if isinstance(gap_start, datetime):
        _close_gap(session, done, gap_start)
    return row


_INSERT_ID = insert(cast(Table, Segment.__table__)).returning(Segment.__table__.c.id)


def insert_segment(conn: Connection, done: SegmentDone, seq: int, open_gap_start: datetime | None) -> int:
    """``add_segment`` for a writer that needs only the new row's id and knows the camera's open gap (or that
    there is none): one Core ``INSERT ... RETURNING`` on the transaction's connection, no ORM unit of work,
    which was a fifth of the hub's CPU per segment received from a gateway (docs/benchmarks.md "Edge
    gateways")."""
    seg_id = int(conn.execute(_INSERT_ID, segment_row(done, seq)).scalar_one())
    if open_gap_start is not None:
        _close_gap(conn, done, open_gap_start)
    return seg_id


def _close_gap(session: Session | Connection, done: SegmentDone, gap_start: datetime) -> None:
    """The camera's open gap ends where this segment starts (never before the gap's own start)."""
    session.execute(update(Gap).where(Gap.camera_id == done.camera_id, Gap.end.is_(None))
                    .values(end=max(done.start, gap_start)))


def segment_row(done: SegmentDone, seq: int) -> dict[str, object]:
    """The column values of a segment's index row."""
    return {"camera_id": done.camera_id, "seq": seq, "start": done.start, "end": done.end, "path": done.path,
            "bytes": done.bytes, "keyframes": done.keyframes, "frames": done.frames, "init_bytes": done.init_bytes,
            "codec": done.codec, "width": done.width, "height": done.height, "session": done.session}


_COPY_COLUMNS = ("camera_id", "seq", "start", "end", "path", "bytes", "keyframes", "frames", "init_bytes", "codec",
                 "width", "height", "session", "created_at")


def insert_segments(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Insert many segment rows in the session's transaction: COPY on PostgreSQL, a multi-row INSERT elsewhere.

    COPY writes twice the rows per core-second of the multi-row INSERT (writer and server CPU together) and
    is the only path measured to keep up with a city's 20,000-50,000 rows a second on a few cores
    (docs/benchmarks.md "Index at scale").
    """
    if not rows:
        return
    conn = session.connection()
    if not partitioned(conn) or conn.dialect.driver != "psycopg":  # COPY through psycopg 3 only
        session.execute(insert(Segment), list(rows))
        return
    now = utcnow()
    cols = ", ".join(f'"{c}"' for c in _COPY_COLUMNS)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {Segment.__tablename__} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(now if c == "created_at" else row[c] for c in _COPY_COLUMNS))


def _open_start(session: Session, camera_id: int) -> datetime | None:
    return session.execute(
        select(Gap.start).where(Gap.camera_id == camera_id, Gap.end.is_(None)).order_by(Gap.id.desc()).limit(1)
    ).scalar_one_or_none()


def open_gap(session: Session, camera_id: int, start: datetime, reason: str, detail: str) -> None:
    """Open a gap unless one is already open for the camera (the first cause is kept)."""
    if _open_start(session, camera_id) is None:
        session.add(Gap(camera_id=camera_id, start=start, reason=reason, detail=detail[:1000]))


class Indexer:
    """Serialises every index write on one thread, committing in batches so hundreds of cameras cost few commits.

    After the first item of a batch it lingers ``linger_s`` to gather the segments other cameras publish
    meanwhile: one multi-row insert and one commit for them all instead of an ORM flush and a commit each,
    which was a third of the recorder's CPU at 100 cameras. A segment reaches the index at most that much
    later; the live playlist reads the segment being written from disk, so it does not wait for this.
    """

    def __init__(self, db: Database, logger: logging.Logger, linger_s: float = 0.25) -> None:
        self._db = db
        self._linger_s = linger_s
        self._log = logger
        self._queue: queue.Queue[SegmentDone | _GapOp | _ForgetOp | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rec-indexer", daemon=True)
        self._idle = threading.Event()
        self._idle.set()
        self._seq: dict[int, int] = {}  # camera -> next sequence number, so no MAX() per insert
        self._gap: dict[int, datetime | None] = {}  # camera -> start of its open gap, if any

    def start(self) -> None:
        self._thread.start()

    def segment(self, done: SegmentDone) -> None:
        self._idle.clear()
        self._queue.put(done)

    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None:
        self._idle.clear()
        self._queue.put(_GapOp(camera_id, start, reason, detail))

    def forget(self, camera_id: int) -> None:
        """Drop what this writer remembers of a camera (sequence, open gap) once its queued rows are written.

        For a camera that another process records next (a cluster moved it): its rows would change the
        sequence number and gaps under this writer's feet.
        """
        self._idle.clear()
        self._queue.put(_ForgetOp(camera_id))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[SegmentDone | _GapOp | _ForgetOp] = []
            item = self._queue.get()
            if item is None:
                stopping = True
            else:
                batch.append(item)
            deadline = time.monotonic() + self._linger_s
            while len(batch) < 500 and not stopping:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            if batch:
                self._write(batch)
            if self._queue.empty():
                self._idle.set()

    def _write(self, batch: Sequence[SegmentDone | _GapOp | _ForgetOp]) -> None:
        # Day partitions first, before this thread opens a transaction on the index (making one locks the
        # parent table); tomorrow's too, so midnight never finds its partition missing.
        days = {day_of(item.start) for item in batch if isinstance(item, SegmentDone)}
        try:
            ensure_days(self._db.engine, days | {day_of(utcnow() + timedelta(days=1))})
        except Exception:  # noqa: BLE001  rows of a day without a partition go to the default one
            self._log.exception("could not make the index's day partitions")
        try:
            with self._db.session() as session:
                self._apply(session, batch)
        except Exception:  # noqa: BLE001  one bad row must not lose the rest of the batch
            self._seq.clear()
            self._gap.clear()
            self._log.exception("recording index batch failed; retrying one by one")
            for item in batch:
                try:
                    with self._db.session() as session:
                        self._apply(session, [item])
                except Exception:  # noqa: BLE001
                    self._log.exception("recording index write failed for camera %s", item.camera_id)

    def _warm(self, session: Session, cams: set[int]) -> None:
        """Learn the sequence numbers and open gaps of the batch's cameras not seen yet, a few queries for
        them all: after a restart every camera is new, and two queries per camera held a city's first
        round of segments to under a thousand rows a second (docs/benchmarks.md "Index at scale")."""
        new = sorted(c for c in cams if c not in self._gap or c not in self._seq)
        for i in range(0, len(new), 500):
            chunk = new[i:i + 500]
            seqs = {cam: last for cam, last in session.execute(
                select(Segment.camera_id, func.max(Segment.seq)).where(Segment.camera_id.in_(chunk))
                .group_by(Segment.camera_id)).tuples()}
            gaps: dict[int, datetime] = {}
            for cam, start in session.execute(select(Gap.camera_id, Gap.start)
                                              .where(Gap.camera_id.in_(chunk), Gap.end.is_(None))
                                              .order_by(Gap.id)).tuples():
                gaps[cam] = start  # the newest open gap wins, as in _open_start
            for cam in chunk:
                if cam not in self._seq:
                    last = seqs.get(cam)
                    self._seq[cam] = 0 if last is None else int(last) + 1
                if cam not in self._gap:
                    self._gap[cam] = gaps.get(cam)

    def _apply(self, session: Session, batch: Sequence[SegmentDone | _GapOp | _ForgetOp]) -> None:
        # The Indexer is the only writer of segments and gaps, so it can remember each camera's sequence
        # number and open gap instead of asking the database for them on every segment.
        rows: list[dict[str, object]] = []
        self._warm(session, {item.camera_id for item in batch})
        for item in batch:
            cam = item.camera_id
            if isinstance(item, _ForgetOp):
                self._seq.pop(cam, None)
                self._gap.pop(cam, None)
                continue
            if cam not in self._gap:
                self._gap[cam] = _open_start(session, cam)
            if isinstance(item, SegmentDone):
                seq = self._seq.get(cam)
                if seq is None:
                    seq = next_seq(session, cam)
                rows.append(segment_row(item, seq))
                gap_start = self._gap[cam]
                if gap_start is not None:
                    session.execute(update(Gap).where(Gap.camera_id == cam, Gap.end.is_(None))
                                    .values(end=max(item.start, gap_start)))
                self._seq[cam] = seq + 1
                self._gap[cam] = None
            else:
                if rows:  # keep the order of events: segments before this gap are inserted first
                    insert_segments(session, rows)
                    rows = []
                open_gap(session, cam, item.start, item.reason, item.detail)
                session.flush()
                if self._gap[cam] is None:
                    self._gap[cam] = item.start
        insert_segments(session, rows)


# Queries ---------------------------------------------------------------------------------------------------


def segments_between(session: Session, camera_id: int, start: datetime | None, end: datetime | None,
                     limit: int | None = None) -> Sequence[Segment]:
    """Segments of a camera overlapping [start, end), oldest first."""
    stmt = select(Segment).where(Segment.camera_id == camera_id)
    if start is not None:
        stmt = stmt.where(Segment.end > start)
    if end is not None:
        stmt = stmt.where(Segment.start < end)
    stmt = stmt.order_by(Segment.start)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.execute(stmt).scalars().all()


def latest_segments(session: Session, camera_id: int, count: int) -> list[Segment]:
    """The newest ``count`` segments, oldest first."""
    rows = session.execute(
        select(Segment).where(Segment.camera_id == camera_id).order_by(Segment.start.desc()).limit(count)
    ).scalars().all()
    return list(reversed(rows))


def latest_detached(db: Database, camera_id: int, count: int) -> list[Segment]:
    """``latest_segments`` in a short session of its own, the rows detached from it (live playlists)."""
    with db.session() as session:
        segs = latest_segments(session, camera_id, count)
        session.expunge_all()
    return segs


class DiscontinuityCounter:
    """The HLS discontinuity sequence number of a camera's segment: how many new sessions came before it.

    RFC 8216 §6.2.2: once a segment after a discontinuity is the first of a live window, the playlist
    must say how many discontinuities scrolled out. Counting them over a month of segments on every
    playlist reload would be far too slow, so the count is taken once per camera and then carried forward
    over only the segments since; retention deleting old segments later does not lower it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], tuple[int, int, str]] = {}  # (db, camera) -> (seq, count, session)

    def at(self, session: Session, camera_id: int, seq: int) -> int:
        """Discontinuities up to and including the start of segment ``seq`` (0 for a camera's first session)."""
        key = (str(session.get_bind().engine.url), camera_id)
        with self._lock:
            known = self._known.get(key)
        if known is not None and known[0] <= seq:
            last_seq, count, last_session = known
            rows = session.execute(
                select(Segment.seq, Segment.session).where(Segment.camera_id == camera_id,
                                                           Segment.seq > last_seq, Segment.seq <= seq)
                .order_by(Segment.seq)).all()
            for row_seq, row_session in rows:
                if row_session != last_session or row_session == RECOVERED:
                    count += 1
                last_seq, last_session = row_seq, row_session
        else:
            upto = (Segment.camera_id == camera_id, Segment.seq <= seq)
            sessions = session.execute(select(func.count(func.distinct(Segment.session)))
                                       .where(*upto, Segment.session != RECOVERED)).scalar_one()
            recovered = session.execute(select(func.count()).select_from(Segment)
                                        .where(*upto, Segment.session == RECOVERED)).scalar_one()
            last = session.execute(select(Segment.seq, Segment.session).where(*upto)
                                   .order_by(Segment.seq.desc()).limit(1)).first()
            if last is None:
                return 0
            last_seq, last_session = last
            count = max(0, int(sessions) + int(recovered) - 1)
        with self._lock:
            self._known[key] = (last_seq, count, last_session)
        return count


RECOVERED = "recovered"  # the session of segments indexed by start-up repair: each one stands alone
discontinuities = DiscontinuityCounter()


def gaps_between(session: Session, camera_id: int, start: datetime | None, end: datetime | None) -> Sequence[Gap]:
    """Gaps of a camera overlapping [start, end), open ones included."""
    stmt = select(Gap).where(Gap.camera_id == camera_id)
    if start is not None:
        stmt = stmt.where(or_(Gap.end.is_(None), Gap.end > start))
    if end is not None:
        stmt = stmt.where(Gap.start < end)
    return session.execute(stmt.order_by(Gap.start)).scalars().all()


def active_holds(session: Session, camera_id: int | None = None) -> Sequence[Hold]:
    """Holds not yet released."""
    stmt = select(Hold).where(Hold.released_at.is_(None))
    if camera_id is not None:
        stmt = stmt.where(Hold.camera_id == camera_id)
    return session.execute(stmt.order_by(Hold.id)).scalars().all()


def delete_segment_rows(session: Session, ids: Sequence[int]) -> None:
    for i in range(0, len(ids), 500):
        session.execute(delete(Segment).where(Segment.id.in_(ids[i:i + 500])))

