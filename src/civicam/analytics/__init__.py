"""civicam.analytics."""
