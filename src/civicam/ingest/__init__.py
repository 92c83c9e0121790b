"""Stream sources, probe measurement, recorder and its supervisor."""
