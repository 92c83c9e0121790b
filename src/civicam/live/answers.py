"""What the live service layer answers, without a web framework: bytes with a status and headers, or a
refusal with a status and a reason. The API turns them into HTTP responses (``civicam.api.routers.live``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    """A response body with its status, media type and headers."""

    content: bytes = b""
    status_code: int = 200
    media_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """The request cannot be served; ``status_code`` is the HTTP status that says why."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.detail, self.headers = status_code, detail, headers or {}
