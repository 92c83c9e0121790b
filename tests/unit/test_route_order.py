"""The gateways' router is tried first (api/app.py): that is safe only while no route of another router also
matches a path of the gateways' routes, so that the order decides no request's handler."""

from __future__ import annotations

import re

from starlette.routing import compile_path

from civicam.api.app import ROUTERS
from civicam.api.routers import edge


def _paths(module: object) -> list[str]:
    router = module.router  # type: ignore[attr-defined]
    return [router.prefix + route.path for route in router.routes]


def test_the_gateway_router_comes_first_and_no_other_route_matches_its_paths() -> None:
    assert ROUTERS[0] is edge
    # Each gateway route as a concrete path (every parameter filled in), tried against every other route.
    concrete = [re.sub(r"\{[^}]+\}", "7", p) for p in _paths(edge)]
    assert "/edge/uploads" in concrete and "/edge/uploads/7" in concrete
    for module in ROUTERS[1:]:
        for path in _paths(module):
            regex, _, _ = compile_path(path)
            clash = [p for p in concrete if regex.match(p)]
            assert not clash, f"{module.__name__}'s {path} also matches the gateway router's {clash}"
