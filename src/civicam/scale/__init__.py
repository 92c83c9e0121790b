"""The hub on a Ray cluster: the only package that imports Ray (``pip install civicam[cluster]``).

``runtime`` connects and lists nodes, ``worker`` is the per-node actor that hosts the ordinary recording
and analytics services for the cameras it is given, ``controller`` reconciles what the database wants
with what the workers hold, deciding with the pure ``civicam.domain.placement``. Importing this package
itself does not import Ray, so ``civicam`` runs without it on one machine.
"""
