"""Alert rules evaluated against site aggregates; alerts stored, audited and sent to a webhook."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from civicam.analytics.aggregation import total
from civicam.analytics.records import Alert, AlertRule
from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Site
from civicam.domain.compliance import Rule, breaches
from civicam.domain.netpolicy import IPAddress
from civicam.domain.urls import redact
from civicam.registry.addresses import AddressNotAllowed, Resolver, resolve_host, webhook_addresses

SYSTEM = Actor(name="system:alerts", source="hub", role="admin")


def sites_in_scope(session: Session, rule: AlertRule) -> list[int]:
    stmt = select(Site.id)
    if rule.site_id is not None:
        stmt = stmt.where(Site.id == rule.site_id)
    elif rule.region_id is not None:
        stmt = stmt.where(Site.region_id == rule.region_id)
    return list(session.execute(stmt.order_by(Site.id)).scalars())


def evaluate_rules(session: Session, now: datetime) -> list[Alert]:
    """Open an alert for every (rule, site) in breach that has no open alert yet; returns the new ones."""
    opened: list[Alert] = []
    rules = session.execute(select(AlertRule).where(AlertRule.enabled.is_(True))).scalars().all()
    for rule in rules:
        window = timedelta(minutes=rule.window_minutes)
        decision = Rule(rule.threshold, window, rule.min_people)
        for site_id in sites_in_scope(session, rule):
            counts = total(session, "site", site_id, now - window, now)
            if not breaches(counts, decision):
                continue
            already = session.execute(
                select(Alert.id).where(Alert.rule_id == rule.id, Alert.site_id == site_id, Alert.state == "open")
            ).first()
            if already:
                continue
            assert counts.compliance is not None  # breaches() needs it
            alert = Alert(rule_id=rule.id, site_id=site_id, window_start=now - window, window_end=now,
                          people=counts.people, compliance=counts.compliance, threshold=rule.threshold)
            session.add(alert)
            session.flush()
            record(session, SYSTEM, "alert.open", "alert", alert.id,
                   {"rule_id": rule.id, "site_id": site_id, "people": counts.people,
                    "compliance": round(counts.compliance, 4)})
            opened.append(alert)
    return opened


def acknowledge(session: Session, actor: Actor, alert: Alert, note: str = "") -> Alert:
    if alert.state != "open":
        return alert
    alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", actor.name, utcnow()
    record(session, actor, "alert.acknowledge", "alert", alert.id, {"note": note})
    return alert


def payload(alert: Alert, site: Site, rule: AlertRule) -> dict[str, object]:
    """What leaves the hub: a site and its aggregate numbers, nothing about any person."""
    return {
        "type": "civicam.alert",
        "alert_id": alert.id,
        "rule": rule.name,
        "site": {"id": site.id, "name": site.name, "region_id": site.region_id},
        "window": {"start": alert.window_start.isoformat(), "end": alert.window_end.isoformat()},
        "people": alert.people,
        "compliance": round(alert.compliance, 4),
        "threshold": alert.threshold,
        "opened_at": alert.opened_at.isoformat(),
    }


def _pinned_request(client: httpx.Client, url: str, address: IPAddress, body: dict[str, object]) -> httpx.Request:
    """A POST to ``url`` that connects to ``address`` (checked a moment ago) instead of resolving the host
    again; the Host header and TLS (SNI and certificate) still name the host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = f"[{address}]" if address.version == 6 else str(address)
    netloc = ip if parts.port is None else f"{ip}:{parts.port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return client.build_request("POST", target, json=body, headers=headers, extensions=extensions)


def deliver(url: str, body: dict[str, object], attempts: int = 3, timeout_s: float = 5.0,
            backoff_s: float = 0.5, wait: Callable[[float], object] | None = None,
            allow: Sequence[str] = (), resolve: Resolver = resolve_host) -> str | None:
    """POST ``body``; retried with backoff. Returns None on success, else the last error (redacted).

    Before every attempt the host is resolved and every address checked (``webhook_addresses``: public
    ones only, or inside ``allow``), and the request goes to an address so checked, never to one the host
    resolves to a moment later. Redirects are not followed.
    """
    pause = wait or threading.Event().wait
    error = "not attempted"
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(attempts):
            try:
                addresses = webhook_addresses(url, allow, resolve)
            except AddressNotAllowed as exc:
                return redact(f"refused: {exc}")  # retrying cannot make the address allowed
            try:
                r = client.send(_pinned_request(client, url, addresses[0], body))
                if r.status_code < 300:
                    return None
                error = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < attempts:
                pause(backoff_s * 2**attempt)
    return redact(error)


class AlertService:
    """Evaluates rules every ``interval_s`` and sends new alerts to their webhook; start()/close() lifecycle."""

    def __init__(self, ctx: Context, logger: logging.Logger, interval_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.ctx, self.log, self.interval_s, self.clock = ctx, logger, interval_s, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[int]:
        with self.ctx.db.session() as s:
            new = evaluate_rules(s, self.clock())
            jobs = []
            for alert in new:
                rule = s.get(AlertRule, alert.rule_id)
                site = s.get(Site, alert.site_id)
                assert rule is not None and site is not None
                url = rule.webhook_url or self.ctx.settings.alert_webhook_url
                if url:
                    jobs.append((alert.id, url, payload(alert, site, rule)))
            ids = [a.id for a in new]
        for alert_id, url, body in jobs:
            error = deliver(url, body, wait=self._stop.wait, allow=self.ctx.settings.alert_webhook_allow_networks)
            with self.ctx.db.session() as s:
                row = s.get(Alert, alert_id)
                if row is not None:
                    row.delivered, row.delivery_error = error is None, error
            if error:
                self.log.warning("alert %s: webhook delivery failed: %s", alert_id, error)
        return ids

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # a bad cycle must not end alerting for the hub's lifetime
                self.log.exception("alert evaluation failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="civicam-alerts", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
