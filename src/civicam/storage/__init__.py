"""civicam.storage."""
