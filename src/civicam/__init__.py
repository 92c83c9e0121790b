"""civicam: a privacy-first, city-scale video hub that counts and measures, and never identifies."""

__version__ = "0.1.0"
