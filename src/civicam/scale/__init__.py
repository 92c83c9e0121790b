"""civicam.scale."""
