"""The cluster controller: reconciles the cameras the database wants recorded with what the node workers hold.

Habit 10 (ray serve's deployment_state): each round reads desired state (accepted cameras, whether
analytics runs) from the database and actual state from the workers themselves, hands both to the pure
``civicam.domain.placement.plan``, and applies the plan: releases first, and only once they are done,
starts, so no camera is ever written by two nodes at once. A camera that moves between live nodes (a
node joined) is handed over make-before-break: its new recorder connects and holds its stream before
the old one is released, then continues from the old one's last segment with no gap (ingest/handover.py).
A standby recorder is not reported as recording, so a controller that dies mid-handover leaves the
camera with its old node, and the standby one expires. Nothing is remembered between rounds that
the workers cannot tell again, which is what makes failover safe: the controller is a detached named
actor that Ray restarts when it dies, and the new one finds the cameras where the workers hold them.

A node that dies takes its worker with it; the worker's cameras are placed on the others in the next
round, and their recorders open the gap from the last indexed segment (the recorder's own
``recorder_down`` gap), which closes at the first new segment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import GetTimeoutError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from sqlalchemy import select

from civicam.config.settings import Settings, get_settings
from civicam.context import Context, open_context
from civicam.db.models import Camera
from civicam.domain.placement import Plan, analytics_capacity, capacity, plan
from civicam.ingest.service import RecordingService
from civicam.ingest.supervisor import CameraHealth
from civicam.scale.runtime import CONTROLLER, NAMESPACE, NodeInfo, live_nodes, worker_name
from civicam.scale.worker import WORKER_OPTIONS, NodeWorkerActor, settings_for_workers

if TYPE_CHECKING:
    from civicam.analytics.service import AnalyticsHealth  # its detectors' libraries: not at import

log = logging.getLogger("civicam.scale.controller")


@dataclass
class WorkerSlot:
    """The controller's handle on one node's worker and the last thing it said."""

    node: NodeInfo
    handle: Any
    created: float
    ready: bool = False
    ping: Any = None  # the outstanding ping's ObjectRef
    ping_sent: float = 0.0
    recording: set[int] = field(default_factory=set)
    analysing: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Desired:
    recording: frozenset[int]
    analysing: frozenset[int]


def recorder_slots(nodes: Mapping[str, NodeInfo], per_core: float) -> dict[str, int]:
    return {n: capacity(info.cpus, per_core) for n, info in nodes.items()}


def analytics_slots(nodes: Mapping[str, NodeInfo], per_core: float, per_gpu: float | None) -> dict[str, int]:
    return analytics_capacity({n: (i.cpus, i.gpus) for n, i in nodes.items()}, per_core, per_gpu)


class Reconciler:
    """One controller's state and its rounds; ``round`` is what the loop repeats."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.cfg = settings.cluster
        self.ctx: Context = open_context(settings, migrate=False)
        self._worker_settings = settings_for_workers(settings)
        self._clock = clock
        self.slots: dict[str, WorkerSlot] = {}
        self.events: deque[str] = deque(maxlen=200)
        self.rounds = 0
        self.last_plan_ms = 0.0
        self.unplaced: list[int] = []
        self._last_clean = 0.0
        # Until every worker found at start has answered, nothing is planned: a worker of the previous
        # controller holds cameras this one does not know of yet, and placing them elsewhere would record
        # them twice. Workers of nodes that join later do not hold anything and do not hold planning up.
        self.adopting = True
        # Retention runs once per store, here, not in every worker (see RecordingService's maintenance).
        self._retention = RecordingService(self.ctx, log, scope=(), maintenance=False)

    def _event(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.events.append(f"{stamp} {text}")
        log.info("%s", text)

    # --- desired state -------------------------------------------------------------------------------

    def desired(self) -> Desired:
        with self.ctx.db.session() as s:
            ids = frozenset(s.execute(select(Camera.id).where(Camera.status == "accepted")).scalars())
        return Desired(ids, ids if self.settings.analytics.enabled else frozenset())

    # --- actual state --------------------------------------------------------------------------------

    def _spawn(self, node: NodeInfo) -> WorkerSlot:
        # get_if_exists: a controller restarted by Ray adopts the worker its predecessor made.
        handle = NodeWorkerActor.options(
            **WORKER_OPTIONS, name=worker_name(node.node_id), namespace=NAMESPACE, lifetime="detached",
            get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        ).remote(self._worker_settings, node.node_id)
        return WorkerSlot(node, handle, self._clock())

    def _drop(self, node_id: str, why: str) -> None:
        slot = self.slots.pop(node_id)
        held = len(slot.recording)
        self._event(f"node {node_id[:12]}: {why}; its {held} camera(s) go to the other nodes")
        try:
            # Killed, not just forgotten: a worker that is slow but alive must not keep recording its cameras.
            ray.kill(slot.handle, no_restart=True)
        except (RayError, ValueError):
            pass

    def observe(self, wait_s: float = 0.5) -> None:
        """Start workers on new nodes, forget those of dead nodes, and collect every worker's answer."""
        nodes = {n.node_id: n for n in live_nodes()}
        for node_id in [n for n in self.slots if n not in nodes]:
            self._drop(node_id, "left the cluster")
        for node_id, info in nodes.items():
            if node_id not in self.slots:
                self.slots[node_id] = self._spawn(info)
                self._event(f"node {node_id[:12]}: joined ({info.cpus:g} CPU, {info.gpus:g} GPU)")
            else:
                self.slots[node_id].node = info
        now = self._clock()
        for slot in self.slots.values():
            if slot.ping is None:
                slot.ping, slot.ping_sent = slot.handle.ping.remote(), now
        refs = [s.ping for s in self.slots.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=wait_s) if refs else ([], [])
        done = set(ready)
        now = self._clock()
        for node_id, slot in list(self.slots.items()):
            if slot.ping in done:
                ref, slot.ping = slot.ping, None
                try:
                    answer = ray.get(ref)
                except RayError as exc:
                    self._drop(node_id, f"worker failed ({type(exc).__name__})")
                    continue
                slot.recording, slot.analysing = set(answer["recording"]), set(answer["analysing"])
                if not slot.ready:
                    slot.ready = True
                    self._event(f"node {node_id[:12]}: worker ready (pid {answer['pid']})")
            elif slot.ready and now - slot.ping_sent > self.cfg.ping_timeout_s:
                self._drop(node_id, f"worker silent for {now - slot.ping_sent:.1f} s")
            elif not slot.ready and now - slot.created > self.cfg.start_timeout_s:
                self._drop(node_id, "worker did not start")

    # --- one round -----------------------------------------------------------------------------------

    def round(self) -> tuple[Plan, Plan]:
        self.rounds += 1
        self.observe()
        if self.adopting:
            if not all(s.ready for s in self.slots.values()):
                return Plan({}), Plan({})
            self.adopting = False
            held = sum(len(s.recording) for s in self.slots.values())
            self._event(f"controller took over: {len(self.slots)} worker(s) holding {held} camera(s)")
        want = self.desired()
        ready = {n: s for n, s in self.slots.items() if s.ready}
        nodes = {n: s.node for n, s in ready.items()}
        t0 = time.perf_counter()
        rec = plan(want.recording, recorder_slots(nodes, self.cfg.streams_per_core),
                   {n: s.recording for n, s in ready.items()})
        ana = plan(want.analysing, analytics_slots(nodes, self.cfg.analytics_per_core, self.cfg.analytics_per_gpu),
                   {n: s.analysing for n, s in ready.items()})
        self.last_plan_ms = (time.perf_counter() - t0) * 1000
        if rec.unplaced != self.unplaced:
            if rec.unplaced:
                self._event(f"{len(rec.unplaced)} camera(s) unplaced: the cluster is at its measured capacity")
            self.unplaced = rec.unplaced
        if not (rec.idle and ana.idle):
            self.apply(rec, ana)
        return rec, ana

    def apply(self, rec: Plan, ana: Plan) -> None:
        """Releases first and waited for, then starts: never two recorders of one camera writing at once.

        A camera moving between two live nodes is handed over make-before-break: its new recorder connects
        and holds (``prepare``) before the old one is released, and the start releases it to continue
        from the old one's last segment (ingest/handover.py). Cameras with no live holder start first.
        """
        moving = self._moving(rec)
        if moving:
            fresh = {node: {"recording": sorted(self.slots[node].recording | (set(cams) - set(moving.get(node, ()))))}
                     for node, cams in rec.start.items() if set(cams) - set(moving.get(node, ()))}
            self._call(fresh, "start")
            self._prepare(moving)
        releases: dict[str, dict[str, list[int]]] = {}
        for kind, p, attr in (("recording", rec, "recording"), ("analysing", ana, "analysing")):
            for node, cams in p.stop.items():
                if node not in self.slots:
                    continue  # dropped while preparing: its worker is gone, and its cameras with it
                keep = getattr(self.slots[node], attr) - set(cams)
                releases.setdefault(node, {})[kind] = sorted(keep)
        self._call(releases, "release")
        starts: dict[str, dict[str, list[int]]] = {}
        for kind, p in (("recording", rec), ("analysing", ana)):
            for node in p.start:
                starts.setdefault(node, {})[kind] = sorted(c for c, n in p.assignment.items() if n == node)
        moved = rec.moves
        self._call(starts, "start")
        if moved:
            handed = sum(len(c) for c in moving.values())
            self._event(f"started {moved} recorder(s) on {len(rec.start)} node(s), {handed} of them handed over "
                        f"make-before-break; stopped {sum(len(c) for c in rec.stop.values())}")

    def _moving(self, rec: Plan) -> dict[str, list[int]]:
        """Per new node, the cameras it takes over from another live node (make-before-break candidates)."""
        if self.cfg.handover_ready_s <= 0:
            return {}
        holder = {c: n for n, s in self.slots.items() if s.ready for c in s.recording}
        out: dict[str, list[int]] = {}
        for node, cams in rec.start.items():
            taken = [c for c in cams if c in holder and holder[c] != node and c in rec.stop.get(holder[c], ())]
            if taken and node in self.slots:
                out[node] = taken
        return out

    def _prepare(self, moving: Mapping[str, list[int]]) -> None:
        """Start the moving cameras' new recorders on hold; return once each receives its stream, or in time."""
        refs = {node: self.slots[node].handle.prepare.remote(cams, self.cfg.handover_timeout_s)
                for node, cams in moving.items()}
        waiting: dict[str, set[int]] = {}
        for node, ref in refs.items():
            try:
                answer = ray.get(ref, timeout=self.cfg.handover_timeout_s)
            except (GetTimeoutError, RayError) as exc:
                if node in self.slots:
                    self._drop(node, f"prepare failed ({type(exc).__name__})")
                continue
            waiting[node] = set(moving[node]) - set(answer["receiving"])
        deadline = self._clock() + self.cfg.handover_ready_s
        while True:
            waiting = {n: c for n, c in waiting.items() if c and n in self.slots}
            if not waiting or self._clock() > deadline:
                break
            time.sleep(0.1)  # poll interval; what synchronises is each worker's answer
            for node in list(waiting):
                try:
                    answer = ray.get(self.slots[node].handle.ping.remote(), timeout=self.cfg.ping_timeout_s)
                except (GetTimeoutError, RayError):
                    continue  # observe() decides whether the node is gone
                waiting[node] -= set(answer["receiving"])
        late = sum(len(c) for c in waiting.values())
        if late:
            self._event(f"{late} moved camera(s) not receiving after {self.cfg.handover_ready_s:g} s on the new "
                        f"node; stopped on the old one anyway (a gap is recorded)")

    def _call(self, calls: Mapping[str, Mapping[str, list[int]]], what: str) -> None:
        refs = {node: self.slots[node].handle.assign.remote(**kwargs)
                for node, kwargs in calls.items() if node in self.slots}
        for node, ref in refs.items():
            try:
                answer = ray.get(ref, timeout=self.cfg.handover_timeout_s)
            except (GetTimeoutError, RayError) as exc:
                if node in self.slots:
                    self._drop(node, f"{what} failed ({type(exc).__name__})")
                continue
            slot = self.slots.get(node)
            if slot is not None:
                slot.recording, slot.analysing = set(answer["recording"]), set(answer["analysing"])

    def clean_if_due(self) -> None:
        now = self._clock()
        if now - self._last_clean >= self.settings.recording.cleaner_interval_s:
            self._last_clean = now
            self._retention.clean_now()

    # --- reporting -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        nodes = []
        per_core = self.cfg.streams_per_core
        for node_id, slot in sorted(self.slots.items()):
            nodes.append({"node_id": node_id, "address": slot.node.address, "cpus": slot.node.cpus,
                          "gpus": slot.node.gpus, "ready": slot.ready,
                          "capacity": capacity(slot.node.cpus, per_core), "recording": sorted(slot.recording),
                          "analysing": sorted(slot.analysing)})
        return {"rounds": self.rounds, "plan_ms": round(self.last_plan_ms, 3), "nodes": nodes,
                "unplaced": self.unplaced, "events": list(self.events)}

    def health(self) -> dict[int, CameraHealth]:
        """Every ready worker's recorder health, merged (a worker that does not answer is left out)."""
        refs = [s.handle.health.remote() for s in list(self.slots.values()) if s.ready]
        out: dict[int, CameraHealth] = {}
        for ref in refs:
            try:
                out.update(ray.get(ref, timeout=self.cfg.ping_timeout_s))
            except RayError:
                continue
        return out

    def analytics_health(self) -> dict[int, AnalyticsHealth] | None:
        """Every ready worker's analytics health, merged; None when analytics is off on this cluster."""
        if not self.settings.analytics.enabled:
            return None
        refs = [s.handle.analytics_health.remote() for s in list(self.slots.values()) if s.ready]
        out: dict[int, AnalyticsHealth] = {}
        for ref in refs:
            try:
                out.update(ray.get(ref, timeout=self.cfg.ping_timeout_s) or {})
            except RayError:
                continue  # a worker that does not answer is left out, as for recording health
        return out

    def close_workers(self) -> None:
        for node_id, slot in list(self.slots.items()):
            try:
                ray.get(slot.handle.close.remote(), timeout=self.cfg.handover_timeout_s)
            except RayError:
                pass
            self._drop(node_id, "stopped by the controller")


class Controller:
    """The actor: a reconcile loop on its own thread; ``status`` and ``shutdown`` answer beside it."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.reconciler = Reconciler(get_settings(**dict(settings)))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="civicam-controller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = self.reconciler.cfg.reconcile_interval_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with self._lock:
                    self.reconciler.round()
                    self.reconciler.clean_if_due()
            except Exception:  # noqa: BLE001  a database or cluster hiccup must not end reconciliation
                log.exception("controller round failed")
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self.reconciler.status()

    def analytics_health(self) -> dict[int, AnalyticsHealth] | None:
        return self.reconciler.analytics_health()

    def health(self) -> dict[int, CameraHealth]:
        # Not under the round's lock: a handover must not hold the dashboard up, and the slots are only read.
        return self.reconciler.health()

    def shutdown(self) -> None:
        """Stop reconciling and every worker (``civicam cluster stop``); the caller then kills this actor."""
        self._stop.set()
        self._thread.join(60)
        with self._lock:
            self.reconciler.close_workers()


ControllerActor: Any = ray.remote(Controller)
# Restarted by Ray whenever it dies (max_restarts=-1); detached so it outlives the command that started it.
CONTROLLER_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 4, "max_restarts": -1}


def ensure_controller(settings: Settings) -> Any:
    """The cluster's controller, started on the head node if it is not running yet (idempotent)."""
    head = next((n for n in live_nodes() if n.is_head), None)
    options: dict[str, Any] = {**CONTROLLER_OPTIONS, "name": CONTROLLER, "namespace": NAMESPACE,
                               "lifetime": "detached", "get_if_exists": True}
    if head is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(head.node_id, soft=True)
    return ControllerActor.options(**options).remote(settings_for_workers(settings))


def find_controller() -> Any | None:
    try:
        return ray.get_actor(CONTROLLER, namespace=NAMESPACE)
    except ValueError:
        return None


def controller_status(controller: Any, timeout: float) -> dict[str, Any]:
    """The controller's status, asked again while Ray (re)starts it, until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            st: dict[str, Any] = ray.get(controller.status.remote(), timeout=timeout)
            return st
        except RayError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the actor is starting or restarting; ask again


def cluster_health(controller: Any, timeout: float = 10) -> dict[int, CameraHealth]:
    """Recorder health of every camera the cluster records, from its workers."""
    health: dict[int, CameraHealth] = ray.get(controller.health.remote(), timeout=timeout)
    return health


def cluster_analytics_health(controller: Any, timeout: float = 10) -> dict[int, AnalyticsHealth] | None:
    """Analytics health of every camera the cluster analyses, from its workers; None: analytics is off."""
    health: dict[int, AnalyticsHealth] | None = ray.get(controller.analytics_health.remote(), timeout=timeout)
    return health


def stop_controller(controller: Any, timeout: float = 120) -> None:
    """Stop every worker (each camera finishes its segment), then the controller for good."""
    ray.get(controller.shutdown.remote(), timeout=timeout)
    ray.kill(controller, no_restart=True)
