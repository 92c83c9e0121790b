"""civicam.cli."""
