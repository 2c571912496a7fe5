"""The audit log area: the viewer and its exports (``views``, ``services``),
the sealer that chains finished events (``sealing``, ``anchors``),
verification, retention and the ``flask audit`` commands (``cli``).

Events are written by the recorder, ``app.audit.record``, which sits low
so that every layer can record; this area only reads, seals, verifies and
purges what it wrote.
"""
