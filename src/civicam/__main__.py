"""``python -m civicam`` runs the command line."""

from civicam.cli.main import app

app()
