"""The audit log against signed checkpoints: whoever rewrites the database, hashes and head recomputed, is
caught by a checkpoint an auditor kept; the audit page verifies from the hub's last checkpoint only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from typer.testing import CliRunner

from civicam.audit import anchor
from civicam.audit.chain import GENESIS, Entry, entry_hash
from civicam.audit.checkpoint import Checkpoint, sign
from civicam.audit.log import Actor, record, verify_log
from civicam.cli.main import app as cli_app
from civicam.context import Context
from civicam.db.models import AuditEvent, AuditHead

WHO = Actor(name="clerk", source="pytest")
sign_nothing = Checkpoint(-1, "", "")  # "no checkpoint yet" in the polling loops below


def _log(ctx: Context, n: int, start: int = 0) -> None:
    with ctx.db.session() as s:
        for i in range(start, start + n):
            record(s, WHO, "test.event", "thing", i, {"n": i})


def _rechain(ctx: Context) -> None:
    """What an attacker with database access does after editing: recompute every hash and the head."""
    with ctx.db.session() as s:
        prev = GENESIS
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        for ev in rows:
            ev.prev_hash = prev
            ev.hash = entry_hash(Entry(ev.id, ev.ts, ev.actor, ev.action, ev.object_type, ev.object_id, ev.source,
                                       ev.detail, prev))
            prev = ev.hash
        head = s.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = (rows[-1].id if rows else 0), prev


def _rewrite(ctx: Context, attack: str) -> None:
    with ctx.db.session() as s:
        if attack == "rewrite":  # entry 10 said something else
            ev = s.get(AuditEvent, 10)
            assert ev is not None
            ev.detail = {"n": "nothing happened"}
        elif attack == "reorder":  # entries 5 and 6 swap places (ids stay in sequence)
            a, b = s.get(AuditEvent, 5), s.get(AuditEvent, 6)
            assert a is not None and b is not None
            a.detail, b.detail = b.detail, a.detail
            a.object_id, b.object_id = b.object_id, a.object_id
        elif attack == "truncate":  # the newest entries vanish
            s.execute(delete(AuditEvent).where(AuditEvent.id > 24))
    _rechain(ctx)


def _verify(ctx: Context, folder: Path) -> anchor.Verified:
    loaded = anchor.load(folder, anchor.signing_key(ctx.settings).public_key())
    assert loaded.problems == []
    with ctx.db.session() as s:
        return anchor.verify_with(s, loaded.checkpoints)


@pytest.mark.parametrize("attack", ["rewrite", "reorder", "truncate"])
def test_a_rewritten_log_with_recomputed_hashes_fails_against_the_auditors_checkpoint(
        ctx: Context, tmp_path: Path, attack: str) -> None:
    _log(ctx, 30)
    cp, result = anchor.checkpoint(ctx.db, ctx.settings, tmp_path / "auditor")
    assert cp is not None and cp.seq == 30 and result.problems == []
    _log(ctx, 5, start=30)
    assert _verify(ctx, tmp_path / "auditor").problems == []  # appending after a checkpoint is fine
    _rewrite(ctx, attack)
    with ctx.db.session() as s:
        assert verify_log(s)[1] == []  # the plain chain cannot tell: every hash was recomputed
    problems = _verify(ctx, tmp_path / "auditor").problems
    assert len(problems) == 1 and problems[0].id == 30
    assert ("truncated" if attack == "truncate" else "rewritten or reordered") in problems[0].message


def test_checkpoints_not_signed_by_the_hubs_key_are_reported_not_trusted(sqlite_ctx: Context,
                                                                         tmp_path: Path) -> None:
    ctx = sqlite_ctx
    _log(ctx, 3)
    folder = tmp_path / "auditor"
    anchor.checkpoint(ctx.db, ctx.settings, folder)
    forged = sign(Ed25519PrivateKey.generate(), 2, "0" * 64, "2026-12-01T00:00:00")
    anchor.write(forged, folder)
    (folder / "checkpoint-000000000009.json").write_text("{not json")
    loaded = anchor.load(folder, anchor.signing_key(ctx.settings).public_key())
    assert [c.seq for c in loaded.checkpoints] == [3]
    assert sorted(p.message.split(":")[0] for p in loaded.problems) == ["checkpoint-000000000002.json",
                                                                       "checkpoint-000000000009.json"]


def test_the_cli_exports_signed_heads_and_verifies_against_them(sqlite_ctx: Context, tmp_path: Path) -> None:
    ctx = sqlite_ctx
    env = {"CIVICAM_DATA_DIR": str(ctx.settings.data_dir), "CIVICAM_DATABASE_URL": ctx.settings.effective_database_url}
    runner = CliRunner()
    _log(ctx, 12)
    out = tmp_path / "auditor"
    made = runner.invoke(cli_app, ["audit", "checkpoint", "--out", str(out), "--json"], env=env)
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["checkpoint"]["seq"] == 12
    key_file = out / anchor.PUBLIC_KEY_FILE
    assert (ctx.settings.data_dir / anchor.KEY_FILE).stat().st_mode & 0o777 == 0o600
    args = ["audit", "verify", "--checkpoints", str(out), "--public-key", str(key_file), "--json"]
    ok = runner.invoke(cli_app, args, env=env)
    assert ok.exit_code == 0 and json.loads(ok.output)["checkpoints"] == 1, ok.output
    with ctx.db.session() as s:  # the last four entries cut, the chain and head recomputed
        s.execute(delete(AuditEvent).where(AuditEvent.id > 8))
    _rechain(ctx)
    plain = runner.invoke(cli_app, ["audit", "verify", "--json"], env=env)
    assert plain.exit_code == 0  # the hash chain alone is fooled
    caught = runner.invoke(cli_app, args, env=env)
    assert caught.exit_code == 1 and "truncated" in caught.output
    other = tmp_path / "other.pem"
    other.write_bytes(anchor.public_pem(Ed25519PrivateKey.generate()))
    wrong_key = runner.invoke(cli_app, [*args[:-2], str(other), "--json"], env=env)
    assert wrong_key.exit_code == 1 and "signature does not match" in wrong_key.output


def test_the_audit_view_walks_only_what_came_after_the_last_checkpoint(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    _log(ctx, anchor.RESIGN_AFTER + 5)
    with ctx.db.session() as s:
        total, problems = anchor.verify_for_view(s, ctx.settings)  # walks all, then signs a checkpoint
    assert (total, problems) == (anchor.RESIGN_AFTER + 5, [])
    _log(ctx, 3, start=10_000)
    folder = anchor.own_folder(ctx.settings)
    latest = anchor.latest(folder, anchor.signing_key(ctx.settings).public_key())
    assert latest is not None and latest.seq == anchor.RESIGN_AFTER + 5
    with ctx.db.session() as s:
        since = anchor.verify_since(s, latest)
        assert since.entries == 3 and since.problems == []  # three entries walked, not a thousand
        assert anchor.verify_for_view(s, ctx.settings) == (anchor.RESIGN_AFTER + 8, [])
    # A tail edited after the checkpoint is still caught by the view; so is the signed entry itself.
    with ctx.db.session() as s:
        ev = s.get(AuditEvent, anchor.RESIGN_AFTER + 7)
        assert ev is not None
        ev.detail = {"n": "edited"}
    with ctx.db.session() as s:
        assert anchor.verify_for_view(s, ctx.settings)[1] != []
    _rechain(ctx)
    with ctx.db.session() as s:
        assert anchor.verify_for_view(s, ctx.settings)[1] == []  # (recomputed after the checkpoint: only the
        # auditor's later checkpoints can tell; the view's guarantee starts at the signed entry)
        ev = s.get(AuditEvent, 3)
        assert ev is not None
        ev.detail = {"n": "edited"}
    _rechain(ctx)
    with ctx.db.session() as s:
        problems = anchor.verify_for_view(s, ctx.settings)[1]
    assert problems and "rewritten or reordered" in problems[0].message


def test_a_running_hub_signs_checkpoints_periodically(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    _log(ctx, 4)
    settings = ctx.settings.model_copy(update={"audit_checkpoint_interval_s": 0.05})
    checkpointer = anchor.Checkpointer(ctx.db, settings, logging.getLogger("test.audit"))
    public = anchor.signing_key(settings).public_key()
    checkpointer.start()
    try:
        deadline = time.monotonic() + 30
        while (anchor.latest(anchor.own_folder(settings), public) or sign_nothing).seq < 4:
            assert time.monotonic() < deadline, "no checkpoint signed within 30 s"
            time.sleep(0.05)  # polling interval of a deadline-bounded wait
        _log(ctx, 2, start=4)
        while (anchor.latest(anchor.own_folder(settings), public) or sign_nothing).seq < 6:
            assert time.monotonic() < deadline, "the new head was not signed within 30 s"
            time.sleep(0.05)
    finally:
        checkpointer.close()
