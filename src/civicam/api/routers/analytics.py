"""Entrance analytics: aggregates per camera, site or region; alert rules; alerts. Only counts, never people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from civicam.analytics.aggregation import published
from civicam.analytics.alerting import acknowledge
from civicam.analytics.records import Alert, AlertRule
from civicam.analytics.service import AnalyticsHealthSource
from civicam.api.deps import Ctx, DbSession, require
from civicam.audit.log import Actor, record
from civicam.db.base import utcnow
from civicam.db.models import Site
from civicam.domain.compliance import Interval, Published, published_total
from civicam.domain.roles import Perm, Role, allows
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.registry.addresses import AddressNotAllowed, webhook_addresses

router = APIRouter(tags=["analytics"])
Reader = Annotated[Actor, Depends(require(Perm.analytics_read))]
Writer = Annotated[Actor, Depends(require(Perm.alerts_write))]


class Bucket(BaseModel):
    """Sums of the bucket's cells (one camera's 15 minutes each) with at least ``min_cell_size`` people."""

    start: datetime
    people: int | None
    masked: int | None
    unmasked: int | None
    unknown: int | None
    compliance: float | None
    suppressed: bool = Field(False, description="Every cell was under the minimum size: no figures (null).")
    partial: bool = Field(False, description="Cells under the minimum size were left out of these figures.")

    @classmethod
    def of(cls, start: datetime, p: Published) -> Bucket:
        if p.suppressed:
            return cls(start=start, people=None, masked=None, unmasked=None, unknown=None, compliance=None,
                       suppressed=True, partial=True)
        c = p.counts
        return cls(start=start, people=c.people, masked=c.masked, unmasked=c.unmasked, unknown=c.unknown,
                   compliance=c.compliance, partial=p.withheld)


class AggregatePublic(BaseModel):
    scope: Literal["camera", "site", "region"]
    id: int
    interval: Interval
    min_cell_size: int
    buckets: list[Bucket]
    total: Bucket | None


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    site_id: int | None = None
    region_id: int | None = None
    threshold: float = Field(ge=0, le=1, description="Alert when compliance falls under this share (0-1).")
    window_minutes: int = Field(60, ge=15, le=7 * 24 * 60)
    min_people: int = Field(20, ge=1)
    webhook_url: str | None = Field(None, pattern=r"^https?://")
    enabled: bool = True


class RulePublic(RuleIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    webhook_url: str | None = Field(None, description="Shown in full only to those who may manage alerts; "
                                    "to other readers only its origin (``https://host/…``).")

    @classmethod
    def shown_to(cls, actor: Actor, rule: AlertRule) -> RulePublic:
        public = cls.model_validate(rule)
        if public.webhook_url and not allows(actor.role, Perm.alerts_write):
            public = public.model_copy(update={"webhook_url": webhook_origin(public.webhook_url)})
        return public


def webhook_origin(url: str) -> str:
    """Only where a webhook goes (scheme and host): its path and query often carry the receiver's secret.

    >>> webhook_origin("https://user:pw@hooks.example:8443/T000/B000/XXXX?token=1")
    'https://hooks.example:8443/…'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/…"


def _audited(body: RuleIn) -> dict[str, Any]:
    """The rule as audited: the webhook included (where alerts go is a fact an auditor needs), credentials
    redacted."""
    data = body.model_dump()
    data["webhook_url"] = redact(body.webhook_url) if body.webhook_url else None
    return data


class AlertPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    rule_id: int
    site_id: int
    opened_at: datetime
    window_start: datetime
    window_end: datetime
    people: int
    compliance: float
    threshold: float
    state: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    delivered: bool


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = ""


def _check_scope(session: Session, actor: Actor, scope: str, scope_id: int) -> None:
    if scope == "camera":
        service.get_camera(session, actor, scope_id)
    elif scope == "site":
        service.get_site(session, actor, scope_id)
    elif actor.role == Role.site_rep:
        raise service.NotFound(f"Region {scope_id} not found.")
    else:
        service.find_region(session, scope_id)


@router.get("/analytics/{scope}/{scope_id}", response_model=AggregatePublic)
def get_aggregates(
    scope: Literal["camera", "site", "region"],
    scope_id: int,
    actor: Reader,
    session: DbSession,
    ctx: Ctx,
    interval: Interval = Interval.hour,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> AggregatePublic:
    """Counts per bucket. A camera's 15 minutes with fewer than ``min_cell_size`` people (but some) is left
    out of every figure, at every interval and scope, so no total can be differenced into it; a bucket
    with nothing else is ``suppressed`` (figures null), one with other cells is ``partial``."""
    _check_scope(session, actor, scope, scope_id)
    until = until or utcnow()
    since = since or until - timedelta(days=1)
    if since >= until:
        raise service.RegistryError("'from' must be before 'to'.")
    k = ctx.settings.analytics.min_cell_size
    rows = published(session, scope, scope_id, interval, since, until, k)
    whole = published_total(p for _, p in rows)
    return AggregatePublic(scope=scope, id=scope_id, interval=interval, min_cell_size=k,
                           buckets=[Bucket.of(t, p) for t, p in rows],
                           total=Bucket.of(rows[0][0], whole) if whole is not None else None)


@router.get("/analytics/health")
def analytics_health(actor: Reader, request: Request, session: DbSession) -> dict[str, Any]:
    """Per camera: analysis lag behind recording, backlog and drops, and whether it suits mask analytics."""
    for svc in getattr(request.app.state, "services", []):
        # This process's analytics, or the cluster's (gathered from its node workers).
        if isinstance(svc, AnalyticsHealthSource) and (health := svc.analytics_health()) is not None:
            visible = service.visible_camera_ids(session, actor, health)
            return {"running": True, "cameras": [
                {**{k: v for k, v in asdict(h).items() if k != "suitability"},
                 "suitability": asdict(h.suitability)}
                for cid, h in sorted(health.items()) if cid in visible]}
    return {"running": False, "cameras": []}


@router.get("/alerts", response_model=list[AlertPublic])
def list_alerts(
    actor: Reader,
    session: DbSession,
    site_id: int | None = None,
    region_id: int | None = None,
    state: Literal["open", "acknowledged"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Sequence[Alert]:
    stmt = select(Alert).join(Site, Site.id == Alert.site_id)
    if actor.role == Role.site_rep:
        stmt = stmt.where(Alert.site_id == actor.site_id)
    if site_id is not None:
        stmt = stmt.where(Alert.site_id == site_id)
    if region_id is not None:
        stmt = stmt.where(Site.region_id == region_id)
    if state is not None:
        stmt = stmt.where(Alert.state == state)
    return session.execute(stmt.order_by(Alert.id.desc()).limit(limit)).scalars().all()


@router.post("/alerts/{alert_id}/ack", response_model=AlertPublic)
def ack_alert(alert_id: int, actor: Writer, session: DbSession, body: AckIn | None = None) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise service.NotFound(f"Alert {alert_id} not found.")
    service.get_site(session, actor, alert.site_id)  # site reps: their own site's alerts only
    return acknowledge(session, actor, alert, body.note if body else "")


def _validate_rule(session: Session, actor: Actor, body: RuleIn, allow: list[str]) -> None:
    if body.webhook_url:
        try:
            webhook_addresses(body.webhook_url, allow)
        except AddressNotAllowed as exc:
            raise service.RegistryError(redact(str(exc))) from None
    if body.site_id is not None and body.region_id is not None:
        raise service.RegistryError("A rule covers one site or one region, not both.")
    if body.site_id is not None:
        service.get_site(session, actor, body.site_id)
    elif actor.role == Role.site_rep:
        raise service.Forbidden("Site representatives can only set rules for their own site.")
    if body.region_id is not None:
        service.find_region(session, body.region_id)


@router.get("/alert-rules", response_model=list[RulePublic])
def list_rules(actor: Reader, session: DbSession) -> list[RulePublic]:
    stmt = select(AlertRule).order_by(AlertRule.id)
    if actor.role == Role.site_rep:
        stmt = stmt.where(AlertRule.site_id == actor.site_id)
    return [RulePublic.shown_to(actor, r) for r in session.execute(stmt).scalars().all()]


@router.post("/alert-rules", response_model=RulePublic, status_code=201)
def create_rule(body: RuleIn, actor: Writer, session: DbSession, ctx: Ctx) -> AlertRule:
    _validate_rule(session, actor, body, ctx.settings.alert_webhook_allow_networks)
    rule = AlertRule(**body.model_dump())
    session.add(rule)
    session.flush()
    record(session, actor, "alert_rule.create", "alert_rule", rule.id, _audited(body))
    return rule


def _own_rule(session: Session, actor: Actor, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or (actor.role == Role.site_rep and rule.site_id != actor.site_id):
        raise service.NotFound(f"Alert rule {rule_id} not found.")
    return rule


@router.put("/alert-rules/{rule_id}", response_model=RulePublic)
def update_rule(rule_id: int, body: RuleIn, actor: Writer, session: DbSession, ctx: Ctx) -> AlertRule:
    rule = _own_rule(session, actor, rule_id)
    _validate_rule(session, actor, body, ctx.settings.alert_webhook_allow_networks)
    for key, value in body.model_dump().items():
        setattr(rule, key, value)
    record(session, actor, "alert_rule.update", "alert_rule", rule.id, _audited(body))
    return rule


@router.delete("/alert-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, actor: Writer, session: DbSession) -> None:
    rule = _own_rule(session, actor, rule_id)
    rule.enabled = False  # alerts keep pointing at their rule; a disabled rule raises nothing more
    record(session, actor, "alert_rule.delete", "alert_rule", rule.id, {})
