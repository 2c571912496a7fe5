"""Rendered fragments kept by everything they depend on.

A list page renders the same rows again and again: an audit event never
changes, and a member's row changes only with the member. ``FragmentCache``
renders a row's template once and keeps the HTML under a key that must hold
*every* input the template reads (the row's values, the time zone, the
links, the viewer's rights): it is a memo of a pure function, so a hit is
the same HTML a fresh render would give, and there is nothing to invalidate.
A caller that leaves an input out of the key is the one way to get this
wrong; each cache's test renders with and without it and compares.

Per process, bounded (least recently used out), thread-safe. What it costs:
the key (a tuple of the row's values) and a dict look-up, against some
hundred microseconds to render a row of controls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app
from markupsafe import Markup


class FragmentCache:
    """``render(key, **context)``: the template rendered with ``context``,
    from the cache when ``key`` was rendered before (``key`` must determine
    the output, see the module docstring)."""

    def __init__(self, template: str, maxsize: int = 4096):
        self.template = template
        self.maxsize = maxsize
        self._kept: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def render(self, key, **context) -> Markup:
        with self._lock:
            html = self._kept.get(key)
            if html is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return html
        # The template is looked up per miss: Jinja's own cache makes that
        # cheap, and an auto-reloaded template is picked up (its old rows
        # stay until they fall out; development only).
        html = Markup(current_app.jinja_env.get_template(self.template).render(**context))
        with self._lock:
            self.misses += 1
            self._kept[key] = html
            if len(self._kept) > self.maxsize:
                self._kept.popitem(last=False)
        return html

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
