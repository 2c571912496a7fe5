"""An organization's settings: general details and the danger zone (``views``)."""
