"""The cluster controller's placement decisions (civicam.domain.placement), checked against invariants."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Collection, Mapping

import pytest

from civicam.domain.placement import Plan, analytics_capacity, capacity, fair_shares, plan, round_robin


def by_node(assignment: Mapping[int, str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for cam, node in assignment.items():
        out[node].append(cam)
    return dict(out)


def check(p: Plan, desired: Collection[int], slots: Mapping[str, int], actual: Mapping[str, Collection[int]]) -> None:
    """Invariants every plan keeps, whatever the input."""
    wanted = set(desired)
    assert set(p.assignment) | set(p.unplaced) == wanted
    assert not set(p.assignment) & set(p.unplaced)
    assert all(node in slots for node in p.assignment.values()), "a camera placed on a dead node"
    for node, load in p.load().items():
        assert load <= slots[node], f"{node} over its capacity"
    # Applying stop then start to the live part of actual state gives exactly the assignment.
    after: dict[str, set[int]] = {n: set(actual.get(n, ())) for n in slots}
    for node, cams in p.stop.items():
        assert node in slots, "a stop sent to a dead node"
        assert set(cams) <= after[node]
        after[node] -= set(cams)
    for node, cams in p.start.items():
        assert not set(cams) & after[node], "started where it already runs"
        after[node] |= set(cams)
    assert {n: c for n, c in after.items() if c} == {n: set(c) for n, c in by_node(p.assignment).items()}
    # Unplaced only when the cluster is full.
    if p.unplaced:
        assert len(p.assignment) == sum(slots.values())


@pytest.mark.parametrize(("total", "slots", "shares"), [
    (30, {"a": 100, "b": 100, "c": 100}, {"a": 10, "b": 10, "c": 10}),
    (10, {"a": 100, "b": 100, "c": 100}, {"a": 4, "b": 3, "c": 3}),
    (10, {"a": 10, "b": 40}, {"a": 2, "b": 8}),
    (10, {"a": 3, "b": 100}, {"a": 0, "b": 10}),  # proportional: 0.3 of a camera rounds away
    (100, {"a": 10, "b": 20}, {"a": 10, "b": 20}),  # more cameras than room: everyone full
    (0, {"a": 10}, {"a": 0}),
    (5, {"a": 0, "b": 0}, {"a": 0, "b": 0}),
    (7, {"a": 1, "b": 100}, {"a": 0, "b": 7}),
    (60, {"a": 1, "b": 50, "c": 50}, {"a": 0, "b": 30, "c": 30}),
])
def test_fair_shares(total: int, slots: dict[str, int], shares: dict[str, int]) -> None:
    got = fair_shares(total, slots)
    assert got == shares
    assert sum(got.values()) == min(total, sum(slots.values()))


@pytest.mark.parametrize(("cores", "per_core", "slots"), [(1, 100.0, 100), (2, 9.01, 18), (0.5, 9.01, 4), (0, 100, 0)])
def test_capacity(cores: float, per_core: float, slots: int) -> None:
    assert capacity(cores, per_core) == slots


def test_capacity_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        capacity(-1, 100)


def test_fresh_cluster_balanced_by_capacity() -> None:
    slots = {"big": 200, "small": 100}
    p = plan(range(90), slots, {})
    check(p, range(90), slots, {})
    assert p.load() == {"big": 60, "small": 30}
    assert p.moves == 90 and not p.stop


def test_node_death_moves_only_its_cameras() -> None:
    slots = {"a": 100, "b": 100, "c": 100}
    first = plan(range(30), slots, {})
    actual = by_node(first.assignment)
    alive = {"a": 100, "c": 100}
    p = plan(range(30), alive, actual)
    check(p, range(30), alive, actual)
    lost = set(actual["b"])
    assert {c for cams in p.start.values() for c in cams} == lost
    assert not p.stop, "no live node gives anything up"
    assert sorted(p.load().values()) == [15, 15]


def test_node_join_takes_a_fair_share_from_the_others_only() -> None:
    actual = {"a": list(range(15)), "b": list(range(15, 30)), "c": []}
    slots = {"a": 100, "b": 100, "c": 100}
    p = plan(range(30), slots, actual)
    check(p, range(30), slots, actual)
    assert p.load() == {"a": 10, "b": 10, "c": 10}
    assert p.moves == 10 and list(p.start) == ["c"]


def test_join_in_a_big_cluster_is_not_absorbed_by_tolerance() -> None:
    # 100 nodes of 2,000 each; a 101st joins: within 10 % the old ones are fine, yet it must not stay idle.
    slots = {f"n{i:03}": 10_000 for i in range(101)}
    actual: dict[str, list[int]] = {f"n{i:03}": list(range(i * 2000, (i + 1) * 2000)) for i in range(100)}
    p = plan(range(200_000), slots, actual)
    check(p, range(200_000), slots, actual)
    assert p.load()["n100"] >= 1980 - 198
    assert p.moves == p.load()["n100"]


def test_balanced_state_is_left_alone() -> None:
    slots = {"a": 100, "b": 100, "c": 100}
    # 11/10/9 is within tolerance of 10 each: moving a camera costs a gap and buys nothing.
    actual = {"a": list(range(11)), "b": list(range(11, 21)), "c": list(range(21, 30))}
    p = plan(range(30), slots, actual)
    assert p.idle and p.assignment == {c: n for n, cams in actual.items() for c in cams}


def test_plan_is_a_fixed_point() -> None:
    rng = random.Random(7)
    for _ in range(50):
        nodes = {f"n{i}": rng.randint(0, 40) for i in range(rng.randint(1, 6))}
        desired = rng.sample(range(500), rng.randint(0, 150))
        actual = {n: rng.sample(range(500), rng.randint(0, 30)) for n in [*nodes, "dead"]}
        p = plan(desired, nodes, actual)
        check(p, desired, nodes, actual)
        again = plan(desired, nodes, by_node(p.assignment))
        assert again.idle, "applying a plan must leave nothing more to do"


def test_duplicates_are_stopped_on_all_but_one_node() -> None:
    # A controller died between "start on b" and "stop on a": camera 1 runs twice.
    actual = {"a": [1, 2], "b": [1, 3]}
    slots = {"a": 10, "b": 10}
    p = plan([1, 2, 3], slots, actual)
    check(p, [1, 2, 3], slots, actual)
    assert p.assignment[1] == "a" and p.stop == {"b": [1]} and not p.start


def test_undesired_cameras_are_stopped() -> None:
    p = plan([1], {"a": 10}, {"a": [1, 2, 3]})
    assert p.stop == {"a": [2, 3]} and p.assignment == {1: "a"}


def test_over_capacity_leaves_cameras_unplaced_not_squeezed() -> None:
    slots = {"a": 4, "b": 4}
    p = plan(range(10), slots, {"a": [0, 1, 2, 3, 4, 5]})
    check(p, range(10), slots, {"a": [0, 1, 2, 3, 4, 5]})
    assert len(p.unplaced) == 2 and p.load() == {"a": 4, "b": 4}


def test_no_live_node() -> None:
    p = plan([1, 2], {}, {"dead": [1]})
    assert p.unplaced == [1, 2] and not p.start and not p.stop


def test_round_robin_reference() -> None:
    assert round_robin([3, 1, 2], ["b", "a"]) == {1: "a", 2: "b", 3: "a"}
    assert round_robin([1], []) == {}


@pytest.mark.parametrize(("nodes", "per_gpu", "slots"), [
    ({"a": (4, 0), "b": (4, 0)}, None, {"a": 36, "b": 36}),
    ({"a": (4, 0), "b": (4, 0)}, 50.0, {"a": 36, "b": 36}),  # no GPU in the cluster: the CPUs analyse
    ({"cpu": (4, 0), "gpu": (4, 2)}, 50.0, {"gpu": 100}),  # GPU nodes take it all once measured
    ({"cpu": (4, 0), "gpu": (4, 2)}, None, {"cpu": 36, "gpu": 36}),  # not measured: counted by cores
])
def test_analytics_capacity(nodes: dict[str, tuple[float, float]], per_gpu: float | None,
                            slots: dict[str, int]) -> None:
    assert analytics_capacity(nodes, 9.01, per_gpu) == slots
