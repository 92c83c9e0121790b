"""civicam.live."""
