"""A checker of HLS media playlists against the rules of RFC 8216 and 8216bis that our playlists use.

Independent of civicam.live.hls: it parses the text as a player would and lists what breaks a rule
(the section is named in each message), so a test can assert the list is empty and see why when not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# Media-playlist tags that may appear once at most (8216bis §4.4.3).
ONCE = ("EXT-X-VERSION", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE",
        "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-PLAYLIST-TYPE")
# Tags that belong to a media segment: the playlist-level ones above must come before the first of these.
SEGMENT_TAGS = ("EXTINF", "EXT-X-BYTERANGE", "EXT-X-DISCONTINUITY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME",
                "EXT-X-PART")
INTEGER = re.compile(r"^\d{1,20}$")


def attributes(value: str) -> dict[str, str]:
    """An attribute list (``KEY=value,KEY="quoted, text"``, §4.2) as a dict, quotes removed."""
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', value)}


@dataclass
class Parsed:
    """What a player takes from a media playlist; ``problems`` lists every rule it breaks."""

    tags: dict[str, str] = field(default_factory=dict)  # the once-only tags' values
    segments: int = 0  # media segments with a URI line
    discontinuities: int = 0  # EXT-X-DISCONTINUITY tags
    parts: list[tuple[str, int, int, float]] = field(default_factory=list)  # (uri, offset, length, duration)
    hints: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check(text: str) -> Parsed:
    """Parse a media playlist and check it."""
    out = Parsed()
    lines = text.splitlines()
    if not lines or lines[0] != "#EXTM3U":
        out.problems.append("§4.4.1.1: the first line must be #EXTM3U")
    seen_segment = False
    extinf: list[float] = []
    for ln in lines[1:]:
        if not ln:
            continue
        if not ln.startswith("#"):
            out.segments += 1
            seen_segment = True
            continue
        name, _, value = ln[1:].partition(":")
        if name in ONCE:
            if name in out.tags:
                out.problems.append(f"§4.4.3: {name} appears more than once")
            if seen_segment:
                out.problems.append(f"§4.4.3: {name} after the first media segment")
            out.tags[name] = value
        elif name in SEGMENT_TAGS:
            seen_segment = True
        if name in ("EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE", "EXT-X-TARGETDURATION") \
                and not INTEGER.match(value):
            out.problems.append(f"§4.4.3: {name} must be a decimal integer, not {value!r}")
        if name == "EXT-X-DISCONTINUITY":
            out.discontinuities += 1
        elif name == "EXTINF":
            extinf.append(float(value.split(",", 1)[0]))
        elif name == "EXT-X-PART":
            a = attributes(value)
            if "URI" not in a or "DURATION" not in a:
                out.problems.append("§4.4.4.9: EXT-X-PART needs URI and DURATION")
                continue
            length, _, offset = a.get("BYTERANGE", "0@0").partition("@")
            out.parts.append((a["URI"], int(offset or 0), int(length), float(a["DURATION"])))
        elif name == "EXT-X-PRELOAD-HINT":
            a = attributes(value)
            if a.get("TYPE") not in ("PART", "MAP") or "URI" not in a:
                out.problems.append("§4.4.5.3: EXT-X-PRELOAD-HINT needs TYPE=PART|MAP and a URI")
            if "BYTERANGE-START" in a and not INTEGER.match(a["BYTERANGE-START"]):
                out.problems.append("§4.4.5.3: BYTERANGE-START must be a decimal integer")
            if any(h.get("TYPE") == a.get("TYPE") for h in out.hints):
                out.problems.append("§4.4.5.3: more than one EXT-X-PRELOAD-HINT of one TYPE")
            out.hints.append(a)
    if "EXT-X-TARGETDURATION" not in out.tags:
        out.problems.append("§4.4.3.1: EXT-X-TARGETDURATION is required")
    else:
        target = int(out.tags["EXT-X-TARGETDURATION"])
        out.problems += [f"§4.4.3.1: EXTINF {d} rounds above the target duration {target}"
                         for d in extinf if math.floor(d + 0.5) > target]
    if out.parts or out.hints:
        inf = attributes(out.tags.get("EXT-X-PART-INF", ""))
        if "PART-TARGET" not in inf:
            out.problems.append("§4.4.3.7: parts and preload hints need EXT-X-PART-INF with PART-TARGET")
        else:
            part_target = float(inf["PART-TARGET"])
            out.problems += [f"§4.4.4.9: a part of {d} s is longer than PART-TARGET {part_target}"
                             for *_, d in out.parts if d > part_target]
            hold = attributes(out.tags.get("EXT-X-SERVER-CONTROL", "")).get("PART-HOLD-BACK")
            if hold is None or float(hold) < 2 * part_target:
                out.problems.append("§4.4.3.8: PART-HOLD-BACK must be at least twice PART-TARGET")
    return out


def hint_follows_last_part(parsed: Parsed) -> bool:
    """Whether the part preload hint names the bytes right after the last listed part, in its file: what a
    player that fetches the hint expects to be the next part (8216bis §4.4.5.3, §6.2.5.3)."""
    hints = [h for h in parsed.hints if h.get("TYPE") == "PART"]
    if len(hints) != 1 or not parsed.parts:
        return False
    uri, offset, length, _ = parsed.parts[-1]
    return hints[0]["URI"] == uri and hints[0].get("BYTERANGE-START") == str(offset + length)
