"""The dashboard's routers, one per page group (as ``civicam.api.routers`` has one per resource)."""
