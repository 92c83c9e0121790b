"""Two sites of one region in a hub's database: what tests of site-scoped access (a gateway's token is good
for its own site's cameras only) start from."""

from __future__ import annotations

from civicam.audit.log import Actor
from civicam.context import Context
from civicam.registry import service

ACTOR = Actor(name="test", source="pytest", role="admin")


def two_sites(ctx: Context) -> tuple[int, int]:
    """(Mall, Station): the ids of two sites, each with its responsible contact."""
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        a = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@x.example")
        b = service.add_site(s, ACTOR, region, "Station", "Bo", "bo@x.example")
        return a.id, b.id
