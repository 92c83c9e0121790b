"""Entrance analytics: anonymous people / mask-compliance counts and face blurring.

civicam counts and measures; it never identifies. Nothing here computes face embeddings or templates,
matches faces, or tracks anyone beyond one camera's in-memory tracks; only aggregate counts leave.
"""

from civicam.analytics.detections import Detections

__all__ = ["Detections"]
