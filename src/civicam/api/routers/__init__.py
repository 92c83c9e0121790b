"""civicam.api.routers."""
