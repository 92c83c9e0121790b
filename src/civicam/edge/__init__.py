"""civicam.edge."""
