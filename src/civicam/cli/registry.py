"""``civicam region|site|camera``: the registry at the command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civicam.cli.common import BAD_INPUT, FAILED, OK, context, err, fail, local_actor, out, print_json
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.registry.onboarding import probe_cameras
from civicam.registry.probe import ProbeResult

region_app = typer.Typer(help="Regions: a city district or a transport network.", no_args_is_help=True)
site_app = typer.Typer(help="Sites: a shopping centre, a station; each with a responsible contact.",
                       no_args_is_help=True)
camera_app = typer.Typer(help="Cameras: register, probe, list, disable.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@region_app.command("add")
def region_add(name: str, json_out: Json = False) -> None:
    """Add a region."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            region = service.add_region(s, local_actor(), name)
            data = {"id": region.id, "name": region.name}
    except service.RegistryError as exc:
        fail(str(exc))
    print_json(data) if json_out else out.print(f"region {data['id']} '{data['name']}' added")


@region_app.command("networks")
def region_networks(
    region: Annotated[str, typer.Argument(help="Region name or id.")],
    cidrs: Annotated[list[str] | None, typer.Argument(help="Camera networks, e.g. 10.20.0.0/16; none: any.")] = None,
    json_out: Json = False,
) -> None:
    """Set the networks (CIDRs) the region's cameras must be in; with none given, lift the limit."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            found = service.find_region(s, region)
            policy = {k: v for k, v in (found.policy or {}).items() if k != "camera_networks"}
            if cidrs:
                policy["camera_networks"] = list(cidrs)
            found = service.set_region_policy(s, local_actor(), found, policy)
            nets: list[str] | None = (found.policy or {}).get("camera_networks")
            data: dict[str, object] = {"id": found.id, "name": found.name, "camera_networks": nets}
    except (service.RegistryError, service.NotFound) as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
    else:
        shown = ", ".join(nets or []) or "any network"
        out.print(f"region {data['id']} '{data['name']}': cameras in {shown}")


@region_app.command("list")
def region_list(json_out: Json = False) -> None:
    """List regions."""
    ctx = context()
    with ctx.db.session() as s:
        rows = [{"id": r.id, "name": r.name, "policy": r.policy} for r in service.list_regions(s, local_actor())]
    if json_out:
        print_json(rows)
        return
    table = Table("id", "name", "policy overrides")
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]), str(r["policy"] or "-"))
    out.print(table)


@site_app.command("add")
def site_add(
    region: Annotated[str, typer.Option(help="Region name or id.")],
    name: Annotated[str, typer.Option(help="Site name.")],
    contact_name: Annotated[str, typer.Option(help="The responsible person.")],
    contact_email: Annotated[str, typer.Option(help="Their email.")],
    contact_phone: Annotated[str | None, typer.Option(help="Their phone.")] = None,
    json_out: Json = False,
) -> None:
    """Add a site to a region."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            r = service.find_region(s, region)
            site = service.add_site(s, local_actor(), r, name, contact_name, contact_email, contact_phone)
            data = {"id": site.id, "name": site.name, "region_id": r.id}
    except (service.RegistryError, service.NotFound) as exc:
        fail(str(exc))
    print_json(data) if json_out else out.print(f"site {data['id']} '{data['name']}' added")


@site_app.command("list")
def site_list(region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
              json_out: Json = False) -> None:
    """List sites."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            region_id = service.find_region(s, region).id if region else None
            rows = [{"id": x.id, "region_id": x.region_id, "name": x.name, "contact_name": x.contact_name,
                     "contact_email": x.contact_email, "contact_phone": x.contact_phone}
                    for x in service.list_sites(s, local_actor(), region_id)]
    except service.NotFound as exc:
        fail(str(exc))
    if json_out:
        print_json(rows)
        return
    table = Table("id", "region", "name", "contact", "email", "phone")
    for x in rows:
        table.add_row(*(str(x[k] or "-") for k in ("id", "region_id", "name", "contact_name", "contact_email",
                                                   "contact_phone")))
    out.print(table)


@camera_app.command("add")
def camera_add(
    site: Annotated[int, typer.Option(help="Site id.")],
    name: Annotated[str, typer.Option(help="Camera name, unique within the site.")],
    url: Annotated[str, typer.Option(help="rtsp://, http(s)://, file:// URL or a local path.")],
    username: Annotated[str | None, typer.Option(help="Stream username.")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the stream password from standard input.")] = False,
    view_only: Annotated[bool, typer.Option("--view-only", help="Watched live on demand only: never recorded "
                                            "or analysed.")] = False,
    json_out: Json = False,
) -> None:
    """Register a camera (pending until probed). Prints its id."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    ctx = context()
    try:
        with ctx.db.session() as s:
            cam = service.add_camera(s, local_actor(), ctx.secrets, site, name, url, username, password,
                                     view_only=view_only, media_dirs=ctx.settings.registry.media_dirs,
                                     policy=ctx.settings.policy)
            data = {"id": cam.id, "name": cam.name, "url": redact(cam.url), "status": cam.status,
                    "view_only": cam.view_only}
    except (service.RegistryError, service.NotFound) as exc:
        fail(str(exc))
    print_json(data) if json_out else out.print(data["id"])


@camera_app.command("list")
def camera_list(
    site: Annotated[int | None, typer.Option(help="Only this site.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, accepted, rejected or disabled.")] = None,
    json_out: Json = False,
) -> None:
    """List cameras (credentials are never shown)."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            cams, _ = service.list_cameras(s, local_actor(), site_id=site, status=status)
            rows = [{"id": c.id, "site_id": c.site_id, "name": c.name, "url": redact(c.url), "status": c.status,
                     "has_credentials": c.has_credentials} for c in cams]
    except service.RegistryError as exc:
        fail(str(exc))
    if json_out:
        print_json(rows)
        return
    table = Table("id", "site", "name", "url", "status")
    for c in rows:
        table.add_row(str(c["id"]), str(c["site_id"]), str(c["name"]), str(c["url"]), str(c["status"]))
    out.print(table)


def _show(camera_id: int, result: ProbeResult) -> None:
    m = result.measured
    colour = "green" if result.verdict == "accepted" else "red"
    shape = f"{m.width}x{m.height}" if m.width else "?"
    fps = f"{m.fps:.2f} fps" if m.fps else "? fps"
    out.print(f"camera {camera_id}: [{colour}]{result.verdict}[/{colour}]  {shape} {fps} {m.codec or '?'}")
    for r in result.reasons:
        out.print(f"  - {r.code}: {r.message}", highlight=False)


@camera_app.command("probe")
def camera_probe(
    camera_id: Annotated[int | None, typer.Argument(help="The camera to probe.")] = None,
    site: Annotated[int | None, typer.Option(help="Probe every camera of this site instead.")] = None,
    seconds: Annotated[float | None, typer.Option(help="How long to read each stream.")] = None,
    json_out: Json = False,
) -> None:
    """Measure the stream against policy and security checks; exit 0 if accepted, 1 if rejected."""
    if (camera_id is None) == (site is None):
        fail("give either CAMERA_ID or --site SITE_ID")
    if seconds is not None and not 0 < seconds <= 60:
        fail("--seconds must be between 0 and 60")
    ctx = context()
    actor = local_actor()
    try:
        if site is not None:
            with ctx.db.session() as s:
                service.get_site(s, actor, site)
                cams, _ = service.list_cameras(s, actor, site_id=site)
                ids = [c.id for c in cams if c.status != "disabled"]
        else:
            assert camera_id is not None
            ids = [camera_id]
        if len(ids) > 1:
            with Progress(TextColumn("probing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err) as progress:
                task = progress.add_task("probe", total=len(ids))
                results = probe_cameras(ctx, actor, ids, seconds, lambda _c, _r: progress.advance(task))
        else:
            results = probe_cameras(ctx, actor, ids, seconds)
    except (service.RegistryError, service.NotFound) as exc:
        fail(str(exc))
    if json_out:
        if camera_id is not None:
            print_json(results[camera_id].to_dict())
        else:
            print_json({str(cid): r.to_dict() for cid, r in results.items()})
    else:
        for cid, r in results.items():
            _show(cid, r)
    raise typer.Exit(OK if all(r.verdict == "accepted" for r in results.values()) else FAILED)


@camera_app.command("disable")
def camera_disable(camera_id: int, reason: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Stop using a camera (recording stops; it must be probed again to return)."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            service.set_camera_status(s, local_actor(), service.get_camera(s, local_actor(), camera_id),
                                      "disabled", reason)
    except (service.RegistryError, service.NotFound) as exc:
        fail(str(exc), BAD_INPUT)
    out.print(f"camera {camera_id} disabled")
