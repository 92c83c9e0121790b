"""civicam.web."""
