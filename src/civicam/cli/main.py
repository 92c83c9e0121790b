"""The ``civicam`` command: set-up, registry, probing, audit, serving and the demo."""

from __future__ import annotations

import secrets as pysecrets
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from civicam.audit import anchor
from civicam.audit.log import record, verify_log
from civicam.auth.passwords import generate_password, hash_password
from civicam.auth.users import UserError, create_user
from civicam.bootstrap import initialise
from civicam.cli.analyze import app as analyze_app
from civicam.cli.cluster import cluster_app
from civicam.cli.common import FAILED, context, fail, local_actor, out, print_json, settings
from civicam.cli.plan import plan_command
from civicam.cli.recordings import export, hold_app, recordings_app
from civicam.cli.recordings import record as record_command
from civicam.cli.registry import camera_app, region_app, site_app
from civicam.db.models import User

app = typer.Typer(name="civicam", help="Privacy-first city video hub. Counts and measures; never identifies.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(region_app, name="region")
app.add_typer(site_app, name="site")
app.add_typer(camera_app, name="camera")
user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(recordings_app, name="recordings")
app.add_typer(hold_app, name="hold")
app.add_typer(analyze_app, name="analyze")
app.add_typer(cluster_app, name="cluster")
app.command("export")(export)
app.command("record")(record_command)
app.command("plan")(plan_command)
# --- edge: site gateways ---
from civicam.cli.edge import edge_app, site_token  # noqa: E402

app.add_typer(edge_app, name="edge")
site_app.command("token")(site_token)
# --- end edge ---

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def init(json_out: Json = False) -> None:
    """Create the data directory, database, encryption key and the admin user (idempotent)."""
    result = initialise(settings(), local_actor())
    s = result.ctx.settings
    if json_out:
        print_json({"created": result.created, "data_dir": str(s.data_dir), "admin_password": result.admin_password})
        return
    if not result.created:
        out.print(f"civicam is already initialised in {s.data_dir}; nothing changed.")
        return
    out.print(f"Initialised civicam in {s.data_dir}")
    out.print(f"Admin user: admin   password: [bold]{result.admin_password}[/bold]")
    out.print("This password is shown only once; store it in your password manager.")
    from civicam.auth.tls import fingerprint_pem_file, tls_files

    files = tls_files(s)
    if files is not None:
        out.print(f"TLS certificate for site gateways: {files[0]} (SHA-256 {fingerprint_pem_file(files[0])})")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator, site_rep or auditor.")],
    site: Annotated[int | None, typer.Option(help="The site of a site representative.")] = None,
    view_unblurred: Annotated[bool, typer.Option(help="May request unblurred video (with a reason).")] = False,
    json_out: Json = False,
) -> None:
    """Create a user with a generated password, printed once."""
    ctx = context()
    password = generate_password()
    try:
        with ctx.db.session() as s:
            user = create_user(s, username, password, role, site, view_unblurred)
            record(s, local_actor(), "user.create", "user", user.id,
                   {"username": username, "role": role, "site_id": site, "view_unblurred": view_unblurred})
            uid = user.id
    except UserError as exc:
        fail(str(exc))
    if json_out:
        print_json({"id": uid, "username": username, "role": role, "password": password})
    else:
        out.print(f"user {uid} '{username}' ({role}) created; password: [bold]{password}[/bold] (shown once)")


@user_app.command("reset-password")
def user_reset(username: str, json_out: Json = False) -> None:
    """Give a user a new generated password, printed once; their open sessions stay valid until they expire."""
    ctx = context()
    password = generate_password()
    with ctx.db.session() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            fail(f"User '{username}' not found.")
        user.password_hash = hash_password(password)
        record(s, local_actor(), "user.password_reset", "user", user.id, {})
    print_json({"username": username, "password": password}) if json_out else out.print(
        f"new password for '{username}': [bold]{password}[/bold] (shown once)")


@audit_app.command("verify")
def audit_verify(
    checkpoints: Annotated[Path | None, typer.Option(
        help="Folder of signed checkpoints (civicam audit checkpoint --out) to check the log against.")] = None,
    public_key: Annotated[Path | None, typer.Option(
        help="The hub's audit public key (PEM) the checkpoints must be signed with; default: the hub's own.")] = None,
    json_out: Json = False,
) -> None:
    """Walk the hash chain; exit 1 if any entry was edited or deleted, or (with --checkpoints) if the log was
    rewritten, reordered or truncated since a checkpoint was signed, even with every hash recomputed."""
    ctx = context()
    signed = 0
    if checkpoints is None:
        with ctx.db.session() as s:
            count, problems = verify_log(s)
    else:
        if not checkpoints.is_dir():
            fail(f"{checkpoints} is not a folder of checkpoints.")
        try:
            public = anchor.load_public(public_key.read_bytes()) if public_key else \
                anchor.signing_key(ctx.settings, create=False).public_key()
        except (OSError, ValueError) as exc:
            fail(f"no usable public key: {exc}")
        loaded = anchor.load(checkpoints, public)
        if not loaded.checkpoints and not loaded.problems:
            fail(f"no checkpoint files in {checkpoints}.")
        with ctx.db.session() as s:
            result = anchor.verify_with(s, loaded.checkpoints)
        count, problems, signed = result.entries, loaded.problems + result.problems, len(loaded.checkpoints)
    if json_out:
        print_json({"ok": not problems, "entries": count, "checkpoints": signed,
                    "problems": [{"id": p.id, "message": p.message} for p in problems]})
    elif problems:
        out.print(f"[red]audit chain BROKEN[/red] ({count} entries checked)")
        for p in problems:
            out.print(f"  entry {p.id}: {p.message}")
    else:
        out.print(f"[green]audit chain intact[/green]: {count} entries")
    if problems:
        raise typer.Exit(FAILED)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder the auditor keeps the signed checkpoints in.")],
    json_out: Json = False,
) -> None:
    """Verify the chain since the last checkpoint and sign its head (Ed25519) into --out; exit 1 if broken."""
    ctx = context()
    try:
        cp, result = anchor.checkpoint(ctx.db, ctx.settings, out_dir)
    except OSError as exc:
        fail(f"cannot write the checkpoint: {exc}")
    if json_out:
        print_json({"ok": cp is not None, "checkpoint": cp.to_json() if cp else None,
                    "file": str(out_dir / cp.file_name) if cp else None,
                    "problems": [{"id": p.id, "message": p.message} for p in result.problems]})
    elif cp is None:
        out.print("[red]audit chain BROKEN[/red]: no checkpoint signed")
        for p in result.problems:
            out.print(f"  entry {p.id}: {p.message}")
    else:
        out.print(f"signed checkpoint at entry {cp.seq}: {out_dir / cp.file_name}")
        out.print(f"public key: {out_dir / anchor.PUBLIC_KEY_FILE} (keep a copy apart from the hub)")
    if cp is None:
        raise typer.Exit(FAILED)


@audit_app.command("list")
def audit_list(limit: Annotated[int, typer.Option(min=1, max=10000)] = 50, json_out: Json = False) -> None:
    """The newest audit entries."""
    from civicam.db.models import AuditEvent

    ctx = context()
    with ctx.db.session() as s:
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).scalars().all()
        data = [{"id": e.id, "ts": e.ts.isoformat(), "actor": e.actor, "action": e.action,
                 "object": f"{e.object_type}:{e.object_id or '-'}", "source": e.source, "detail": e.detail}
                for e in rows]
    if json_out:
        print_json(data)
        return
    for e in data:
        out.print(f"{e['id']:>6} {e['ts']} {e['actor']:<16} {e['action']:<20} {e['object']:<14} {e['source']}",
                  highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="Record and analyse on the Ray cluster at this address (host:port or 'auto') instead of in "
        "this process; see 'civicam cluster'.")] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS (needed by site gateways).")] = False,
    api_only: Annotated[bool, typer.Option(
        help="Serve the API and dashboard only: recording and analytics run elsewhere (civicam record, a "
             "cluster). Several such processes behind one address serve the same hub.")] = False,
) -> None:
    """Run the hub: API, web dashboard, recording and analytics of accepted cameras."""
    from civicam.server import run

    ctx = context()
    run(ctx, host or ctx.settings.host, ctx.settings.port if port is None else port, cluster=cluster, tls=tls,
        with_services=not api_only)


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    no_serve: Annotated[bool, typer.Option(help="Set the demo up, then exit instead of serving.")] = False,
) -> None:
    """Set up a demo region, site and cameras from generated video, probe them, and serve the hub."""
    from civicam.demo import build_demo, demo_settings
    from civicam.server import run

    cfg = demo_settings(settings())
    marker = cfg.data_dir / "DEMO"
    if cfg.data_dir.exists() and any(cfg.data_dir.iterdir()) and not marker.exists():
        fail(f"{cfg.data_dir} holds a hub that is not a demo; point CIVICAM_DATA_DIR elsewhere for the demo.")
    result = initialise(cfg, local_actor())
    ctx = result.ctx
    marker.touch()
    password = result.admin_password
    if password is None:
        # A demo hub only: give the admin a fresh password so this start can print it (audited).
        password = pysecrets.token_urlsafe(16)
        with ctx.db.session() as s:
            admin = s.execute(select(User).where(User.username == "admin")).scalar_one()
            admin.password_hash = hash_password(password)
            record(s, local_actor(), "user.password_reset", "user", admin.id, {"why": "demo start"})
    out.print("Setting up the demo cameras (generated video) and probing them...")
    ids = build_demo(ctx, local_actor())
    out.print(f"Demo cameras: {', '.join(map(str, ids))}")
    bind_host, bind_port = host or cfg.host, cfg.port if port is None else port
    out.print(f"\n  civicam hub: [bold]http://{bind_host}:{bind_port}/[/bold]")
    out.print(f"  sign in as: [bold]admin[/bold] / [bold]{password}[/bold]\n")
    if not no_serve:
        run(ctx, bind_host, bind_port)


def main() -> None:
    app()
