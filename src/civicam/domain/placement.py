"""Which node records (or analyses) which camera: the cluster controller's pure decision, no I/O and no Ray.

The controller hands this module the desired state (the cameras that must run), the nodes alive now with
their capacity in cameras, and the actual state (what each node's worker says it holds), and gets back the
assignment to reach and the moves that reach it. Decisions, in order:

1. A camera stays where it is if its node is alive and not overloaded: moving a recorder costs a
   reconnect and a short gap, so nothing moves without a reason.
2. A camera held by two nodes (a controller died mid-move) stays on one and is stopped on the others.
3. Cameras of dead nodes, new cameras and the excess of overloaded nodes are placed on the nodes with
   the most free share of their capacity.
4. A node is "overloaded" when it holds more than its fair share (capacity-weighted) plus a tolerance;
   the tolerance keeps one camera more or less from moving anything.
5. Cameras beyond the whole cluster's capacity are left unplaced and reported, never squeezed onto a
   full node (a recorder past its measured capacity drops frames for every camera it holds).

>>> p = plan([1, 2, 3, 4], {"a": 10, "b": 10}, {"a": [1, 2, 3, 4]})
>>> sorted(p.assignment.items())
[(1, 'a'), (2, 'a'), (3, 'b'), (4, 'b')]
>>> p.moves
2
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

Camera = int
Node = str


@dataclass(frozen=True)
class Plan:
    """The assignment to reach and, per node, what to stop and what to start to reach it."""

    assignment: dict[Camera, Node]
    start: dict[Node, list[Camera]] = field(default_factory=dict)
    stop: dict[Node, list[Camera]] = field(default_factory=dict)
    unplaced: list[Camera] = field(default_factory=list)

    @property
    def moves(self) -> int:
        """Cameras started somewhere they were not running (new, lost or rebalanced ones)."""
        return sum(len(c) for c in self.start.values())

    @property
    def idle(self) -> bool:
        """Nothing to do: actual state is desired state."""
        return not self.start and not self.stop

    def load(self) -> dict[Node, int]:
        out: dict[Node, int] = {}
        for node in self.assignment.values():
            out[node] = out.get(node, 0) + 1
        return out


def capacity(cores: float, per_core: float) -> int:
    """Cameras a node may hold: its cores times the measured cameras per core, rounded down.

    >>> capacity(4, 100.0), capacity(0.5, 9.01)
    (400, 4)
    """
    if cores < 0 or per_core < 0:
        raise ValueError("cores and cameras per core must not be negative")
    return int(math.floor(cores * per_core + 1e-9))


def analytics_capacity(nodes: Mapping[Node, tuple[float, float]], per_core: float,
                       per_gpu: float | None) -> dict[Node, int]:
    """Cameras each node may analyse, from its (cores, GPUs): GPU nodes only, by their GPUs, once a per-GPU
    figure is known; otherwise (no GPU in the cluster, or no measured figure) every node by its cores.

    >>> analytics_capacity({"cpu": (8, 0), "gpu": (8, 1)}, 9.0, 40.0)
    {'gpu': 40}
    >>> analytics_capacity({"cpu": (8, 0), "gpu": (8, 1)}, 9.0, None)
    {'cpu': 72, 'gpu': 72}
    """
    gpu = {n: g for n, (_, g) in nodes.items() if g > 0}
    if gpu and per_gpu is not None:
        return {n: capacity(g, per_gpu) for n, g in gpu.items()}
    return {n: capacity(c, per_core) for n, (c, _) in nodes.items()}


def fair_shares(total: int, slots: Mapping[Node, int]) -> dict[Node, int]:
    """Split ``total`` cameras over nodes in proportion to their slots, never above them (largest remainder).

    >>> fair_shares(10, {"a": 100, "b": 100, "c": 100})
    {'a': 4, 'b': 3, 'c': 3}
    >>> fair_shares(10, {"a": 10, "b": 40})
    {'a': 2, 'b': 8}
    """
    nodes = sorted(slots)
    room = sum(max(0, slots[n]) for n in nodes)
    total = min(total, room)
    if total <= 0 or room <= 0:
        return {n: 0 for n in nodes}
    share = {n: 0 for n in nodes}
    left = total
    active = [n for n in nodes if slots[n] > 0]
    # Water-filling: nodes whose proportional share exceeds their slots are capped and the rest re-split.
    while left > 0 and active:
        weight = sum(slots[n] - share[n] for n in active)
        exact = {n: left * (slots[n] - share[n]) / weight for n in active}
        given = {n: min(slots[n] - share[n], int(exact[n])) for n in active}
        spare = left - sum(given.values())
        for n in sorted(active, key=lambda n: (-(exact[n] - int(exact[n])), n)):
            if spare <= 0:
                break
            if given[n] < slots[n] - share[n]:
                given[n] += 1
                spare -= 1
        for n in active:
            share[n] += given[n]
        left = total - sum(share.values())
        active = [n for n in active if share[n] < slots[n]]
    return share


def tolerance(share: int, fraction: float = 0.1) -> int:
    """How far above its fair share a node may be before cameras move off it: 10 %, at least 1."""
    return max(1, int(share * fraction))


def plan(
    desired: Collection[Camera],
    slots: Mapping[Node, int],
    actual: Mapping[Node, Collection[Camera]],
    *,
    slack: float = 0.1,
) -> Plan:
    """Reconcile ``actual`` (node -> cameras it holds, dead nodes included) with ``desired`` on live ``slots``.

    ``slots``: node -> cameras it may hold, for the nodes alive now only. Nodes of ``actual`` missing from
    ``slots`` are dead: their cameras are re-placed and nothing is sent to them. Deterministic: the same
    input gives the same plan, so a controller that restarts mid-way repeats the same decision.
    """
    wanted = set(desired)
    live = {n: max(0, int(s)) for n, s in slots.items()}
    held: dict[Node, list[Camera]] = {n: [] for n in live}
    stop: dict[Node, list[Camera]] = {}
    owner: dict[Camera, Node] = {}
    # Keep each wanted camera on one live node; which one, for a duplicate, must not depend on dict order.
    for node in sorted(actual):
        if node not in live:
            continue
        for cam in sorted(actual[node]):
            if cam in wanted and cam not in owner and len(held[node]) < live[node]:
                owner[cam] = node
                held[node].append(cam)
            else:
                stop.setdefault(node, []).append(cam)
    shares = fair_shares(len(wanted), live)
    pool = sorted(wanted - owner.keys())
    # Shed the newest cameras (highest ids) of nodes well over their share; they go back to the pool.
    for node in sorted(held):
        cams = held[node]
        if len(cams) > shares[node] + tolerance(shares[node], slack):
            excess = cams[shares[node]:]
            del cams[shares[node]:]
            for cam in excess:
                del owner[cam]
            stop.setdefault(node, []).extend(excess)
            pool.extend(excess)
    # A node well under its share (one that just joined) takes from the nodes over theirs, most over
    # first, when the pool alone cannot fill it: within tolerance above, but not idle below.
    deficit = sum(shares[n] - len(c) for n, c in held.items() if len(c) < shares[n] - tolerance(shares[n], slack))
    extra = deficit - len(pool)
    for node in sorted(held, key=lambda n: (shares[n] - len(held[n]), n)):
        if extra <= 0 or len(held[node]) <= shares[node]:
            break
        give_up = min(extra, len(held[node]) - shares[node])
        excess = held[node][len(held[node]) - give_up:]
        del held[node][len(held[node]) - give_up:]
        for cam in excess:
            del owner[cam]
        stop.setdefault(node, []).extend(excess)
        pool.extend(excess)
        extra -= give_up
    pool.sort()
    start: dict[Node, list[Camera]] = {}

    def give(node: Node, cams: list[Camera]) -> None:
        held[node].extend(cams)
        start.setdefault(node, []).extend(cams)
        for cam in cams:
            owner[cam] = node

    # First every node up to its fair share (one slice each, so 200,000 cameras cost no per-camera loop) ...
    i = 0
    for node in sorted(held):
        room = max(0, shares[node] - len(held[node]))
        if room and i < len(pool):
            give(node, pool[i:i + room])
            i += room
    pool = pool[i:]
    # ... then what rounding and tolerated excess left over, up to capacity, the least filled node first.
    heap = [(len(held[n]) / live[n], n) for n in sorted(held) if len(held[n]) < live[n]]
    heapq.heapify(heap)
    i = 0
    while i < len(pool) and heap:
        _, node = heapq.heappop(heap)
        give(node, [pool[i]])
        i += 1
        if len(held[node]) < live[node]:
            heapq.heappush(heap, (len(held[node]) / live[node], node))
    pool = pool[i:]
    # A camera stopped and started on the same node (shed, then placed back) is no move at all.
    for node, cams in list(start.items()):
        back = set(cams) & set(stop.get(node, ()))
        if back:
            start[node] = [c for c in cams if c not in back]
            stop[node] = [c for c in stop[node] if c not in back]
    start = {n: sorted(c) for n, c in start.items() if c}
    stop = {n: sorted(c) for n, c in stop.items() if c}
    return Plan(assignment=owner, start=start, stop=stop, unplaced=sorted(pool))


def round_robin(desired: Collection[Camera], nodes: Collection[Node]) -> dict[Camera, Node]:
    """The naive reference: deal cameras to nodes in turn, ignoring capacity and where they run now."""
    order = sorted(nodes)
    if not order:
        return {}
    return {cam: order[i % len(order)] for i, cam in enumerate(sorted(desired))}
