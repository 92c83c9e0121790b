"""Onboarding probe: connect to a camera, measure its stream, and judge it against the policy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal

from civicam.domain.policy import Measurement, Policy, Reason, evaluate
from civicam.domain.urls import InvalidStreamURL, parse_stream_url, redact, with_credentials
from civicam.ingest.measure import (
    DEFAULT_SECONDS,
    DEFAULT_TIMEOUT_S,
    AuthFailed,
    NoVideo,
    ProbeTimeout,
    StreamError,
    Unreachable,
    measure_stream,
)
from civicam.registry.security import is_default_credential, vendor_of

Verdict = Literal["accepted", "rejected"]

# How much of an open stream to read when checking whether it also plays without credentials.
_NO_AUTH_CHECK_S = 0.5

# Findings that describe the network path rather than a camera: told apart, they would make the probe a
# port scanner (closed: refused at once; filtered: a timeout; open but no camera: garbage). For callers who
# may not see them (non-admins) they become one ``unreachable`` verdict, answered at one time class.
NETWORK_CODES = frozenset({"unreachable", "timeout", "stream_error", "no_video", "probe_error"})
OPAQUE_UNREACHABLE = Reason(
    "unreachable", "The camera could not be reached, or what answers there is not a camera stream. Check the "
    "address, the port and the network path from the hub to the camera.")


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of probing one camera: accepted iff there are no reasons."""

    verdict: Verdict
    measured: Measurement
    reasons: tuple[Reason, ...]

    @classmethod
    def of(cls, measured: Measurement, reasons: Sequence[Reason]) -> ProbeResult:
        safe = tuple(Reason(r.code, redact(r.message)) for r in reasons)
        return cls("rejected" if safe else "accepted", measured, safe)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def network_failure(self) -> bool:
        """Whether the probe failed on the way to the camera (see ``NETWORK_CODES``)."""
        return any(code in NETWORK_CODES for code in self.codes)

    def opaque(self) -> ProbeResult:
        """The result as told to those who may not learn the state of the network path: a network failure of
        any kind is the same ``unreachable`` with nothing measured."""
        if not self.network_failure:
            return self
        return ProbeResult("rejected", Measurement(), (OPAQUE_UNREACHABLE,))

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            "verdict": self.verdict,
            "measured": {
                "width": m.width,
                "height": m.height,
                "fps": m.fps,
                "codec": m.codec,
                "bitrate_kbps": m.bitrate_kbps,
                "keyframe_interval_s": m.keyframe_interval_s,
            },
            "reasons": [{"code": r.code, "message": r.message} for r in self.reasons],
        }


@dataclass(frozen=True)
class ProbeTarget:
    """One camera to probe; username and password kept apart from the URL (query credentials, if the camera
    takes them so, stay in it)."""

    url: str
    username: str | None = None
    password: str | None = None
    # A region may override the global policy; None means the batch's policy.
    policy: Policy | None = None


def probe_stream(
    url: str,
    username: str | None = None,
    password: str | None = None,
    policy: Policy | None = None,
    seconds: float = DEFAULT_SECONDS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ProbeResult:
    """Probe one camera. Credentials embedded in ``url`` are used when none are passed separately."""
    policy = policy or Policy.model_validate({})
    try:
        parsed = parse_stream_url(url)
    except InvalidStreamURL as exc:
        return ProbeResult.of(Measurement(), [Reason("invalid_url", str(exc))])
    if username is None and parsed.username is not None:
        username, password = parsed.username, parsed.password
    bare = parsed.url  # without credentials: neither user:pass@ nor query ones (parsed.query_secrets)

    # Checked before any connection: trying a default password on a camera is exactly what we refuse.
    if is_default_credential(username, password):
        vendor = vendor_of(username, password)
        message = (
            f"The credentials are a vendor default ({vendor}); set a unique password on the camera "
            "before onboarding it."
        )
        return ProbeResult.of(Measurement(), [Reason("default_credentials", message)])

    try:
        measured = measure_stream(with_credentials(bare, username, password, parsed.query_secrets), seconds,
                                  timeout_s)
    except StreamError as exc:
        return ProbeResult.of(Measurement(), [_reason_for(exc)])

    reasons = evaluate(measured, policy)
    if (username or parsed.query_secrets) and _opens_without_credentials(bare, timeout_s):
        message = "The stream also plays without credentials; enable authentication on the camera."
        reasons.append(Reason("no_auth_required", message))
    return ProbeResult.of(measured, reasons)


def _reason_for(exc: StreamError) -> Reason:
    detail = str(exc)  # already redacted by StreamError
    if isinstance(exc, AuthFailed):
        return Reason("auth_failed", f"The camera refused the credentials. {detail}")
    if isinstance(exc, Unreachable):
        return Reason("unreachable", f"The camera cannot be reached. {detail}")
    if isinstance(exc, ProbeTimeout):
        return Reason("timeout", f"The camera sent no video in time. {detail}")
    if isinstance(exc, NoVideo):
        return Reason("no_video", f"The stream has no video. {detail}")
    return Reason("stream_error", f"The stream could not be read. {detail}")


def _opens_without_credentials(bare_url: str, timeout_s: float) -> bool:
    if not bare_url.startswith(("rtsp", "http")):
        return False
    try:
        measure_stream(bare_url, _NO_AUTH_CHECK_S, min(timeout_s, 5.0))
    except NoVideo:
        return True  # it opened, which is the finding; what it carries is beside the point
    except StreamError:
        return False
    return True


def probe_many(
    targets: Sequence[ProbeTarget],
    policy: Policy | None = None,
    seconds: float = DEFAULT_SECONDS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    concurrency: int = 16,
    on_result: Callable[[int, ProbeResult], None] | None = None,
    uniform_failures: bool = False,
) -> list[ProbeResult]:
    """Probe ``targets`` with at most ``concurrency`` at a time; results in input order.

    Threads suffice: PyAV releases the GIL while it waits on the network and decodes. ``on_result``
    is called in the caller's thread, as each probe finishes, with the target's index.
    ``uniform_failures``: a network failure is answered only once the probe's full deadline
    (``seconds + timeout_s``) has passed, so a refused port takes as long as a filtered one.
    """
    policy = policy or Policy.model_validate({})
    results: list[ProbeResult | None] = [None] * len(targets)

    def one(t: ProbeTarget) -> ProbeResult:
        started = time.monotonic()
        result = probe_stream(t.url, t.username, t.password, t.policy or policy, seconds, timeout_s)
        if uniform_failures and result.network_failure:
            left = started + seconds + timeout_s - time.monotonic()
            if left > 0:
                threading.Event().wait(left)  # padding the answer to the deadline, not synchronisation
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="probe") as pool:
        futures: dict[Future[ProbeResult], int] = {pool.submit(one, t): i for i, t in enumerate(targets)}
        for future in as_completed(futures):
            index = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a bug in one probe must not sink the batch
                result = ProbeResult.of(
                    Measurement(), [Reason("probe_error", f"The probe failed unexpectedly: {exc!r}")]
                )
            results[index] = result
            if on_result is not None:
                on_result(index, result)
    return [r for r in results if r is not None]
