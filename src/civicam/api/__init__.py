"""civicam.api."""
