"""`civicam region networks`: fence a region's cameras into its camera networks from the console."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from civicam.cli.main import app
from civicam.context import Context
from civicam.registry import service
from support.hub import ACTOR


def test_region_networks_are_set_checked_and_lifted(sqlite_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = sqlite_ctx
    monkeypatch.setenv("CIVICAM_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("CIVICAM_DATABASE_URL", ctx.settings.effective_database_url)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North", {"min_fps": 10})
        site = service.add_site(s, ACTOR, region, "Mall", "Ann", "ann@mall.example").id
    runner = CliRunner()
    bad = runner.invoke(app, ["region", "networks", "North", "10.20.0.0/99"])
    assert bad.exit_code == 2 and "CIDR" in bad.output
    ok = runner.invoke(app, ["region", "networks", "North", "10.20.0.0/16", "10.30.0.0/24", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["camera_networks"] == ["10.20.0.0/16", "10.30.0.0/24"]
    outside = runner.invoke(app, ["camera", "add", "--site", str(site), "--name", "X", "--url", "rtsp://10.99.0.1/x"])
    assert outside.exit_code == 2 and "outside the region's camera networks" in outside.output
    inside = runner.invoke(app, ["camera", "add", "--site", str(site), "--name", "Y", "--url", "rtsp://10.30.0.9/y"])
    assert inside.exit_code == 0, inside.output
    lifted = runner.invoke(app, ["region", "networks", "North"])
    assert lifted.exit_code == 0 and "any network" in lifted.output
    with ctx.db.session() as s:
        assert service.find_region(s, "North").policy == {"min_fps": 10}  # other overrides kept
