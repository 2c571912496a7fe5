"""Templates that hand their output up in one piece.

Jinja compiles every piece of a template - each run of text, each ``{{ }}``
- to its own ``yield``, and a template included in another, or a block of a
page that extends ``base.html``, re-yields each of those pieces at every
level above it: the members table's rows pass ~3,200 pieces up through five
generators (row, table, the page's block, the page, base), and the
generators' suspend and resume cost more than the text itself (a quarter of
the members page's CPU time, ``bench/pages.py --profile``).

``BufferedCodeGenerator`` makes a template's top level and each of its blocks
collect their pieces in a list (``list.append``/``extend``, which Jinja
already does inside ``{% set %}`` blocks and macros) and yield them joined,
once. Included templates and blocks then cost one piece to the level above.
The output is the same, character for character (tests/web/test_jinja_buffer.py
renders every template both ways); what is given up is streaming a page
while it renders, which no view here does (``render_template`` joins the
whole page before it sends a byte).

It relies on Jinja's code generator hooks ``enter_frame``/``leave_frame``
and ``Frame.buffer`` (stable since Jinja 2.x; the test above fails if a
Jinja release changes them), and is not used with the async environment.
"""

from __future__ import annotations

from jinja2.compiler import CodeGenerator, Frame

_INCLUDE_WITHOUT_CONTEXT = "yield from template._get_default_module()._body_stream"


class BufferedCodeGenerator(CodeGenerator):
    """A ``CodeGenerator`` whose root and block functions yield one joined string."""

    _include_buffer: str | None = None

    def visit_Include(self, node, frame: Frame) -> None:
        # Jinja writes an include "without context" as a bare ``yield from``
        # whatever the frame: inside a buffered frame its output would jump
        # ahead of the buffer. It goes into the buffer instead (writeline).
        self._include_buffer = frame.buffer
        try:
            super().visit_Include(node, frame)
        finally:
            self._include_buffer = None

    def writeline(self, x: str, node=None, extra: int = 0) -> None:
        if self._include_buffer is not None and x == _INCLUDE_WITHOUT_CONTEXT:
            x = f"{self._include_buffer}.extend(template._get_default_module()._body_stream)"
        super().writeline(x, node, extra)

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        # The root function and each block function: the two kinds of frame
        # that yield to a caller (macros, {% set %} and {% call %} already
        # buffer). A frame that already has a buffer is left alone.
        if frame.buffer is None and (frame.rootlevel or frame.block_frame) and not self.environment.is_async:
            frame.buffer = self.temporary_identifier()
            frame._whole_output = True  # noqa: SLF001  (our own marker on Jinja's frame)
            self.writeline(f"{frame.buffer} = []")

    def leave_frame(self, frame: Frame, with_python_scope: bool = False) -> None:
        if getattr(frame, "_whole_output", False):
            self.writeline(f"yield concat({frame.buffer})")
        super().leave_frame(frame, with_python_scope)
