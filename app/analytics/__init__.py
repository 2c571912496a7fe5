"""Analytics: the organization's charts (``views``), their numbers
(``services``, over ``app.audit.rollups``) and ``flask analytics`` (``cli``)."""
