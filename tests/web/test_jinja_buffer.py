"""Templates compiled by ``BufferedCodeGenerator`` (app/web/jinja_buffer.py)
give the same output as Jinja's own generator, and hand it up in one piece
per template level."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment
from jinja2.compiler import CodeGenerator

from app.web.jinja_buffer import BufferedCodeGenerator

# Every construct that produces or moves output: inheritance over two levels,
# super(), self.<block>(), scoped blocks in loops, includes with and without
# context, macros and call blocks, {% set %} blocks, filters, loop else,
# whitespace control, autoescaping, and output outside blocks of a child
# (dropped by Jinja; must stay dropped).
TEMPLATES = {
    "base.html": (
        "<html>{% block head %}<title>{% block title %}T{% endblock %}</title>{% endblock %}"
        "<body>{% block body %}{% endblock %}{{ self.title() }}</body></html>"
    ),
    "mid.html": "{% extends 'base.html' %}{% block title %}Mid {{ super() }}{% endblock %}",
    "page.html": (
        "{% extends 'mid.html' %}ignored {{ x }}"
        "{% macro cell(v) %}<td>{{ v }}</td>{% endmacro %}"
        "{% macro wrap() %}<div>{{ caller() }}</div>{% endmacro %}"
        "{% block title %}{{ super() }} & {{ name }}{% endblock %}"
        "{% block body %}{% set heading %}<h1>{{ name|upper }}</h1>{% endset %}{{ heading }}"
        "<table>{% for r in rows %}{% block row scoped %}<tr>{{ cell(r) }}"
        "{% include 'row.html' %}</tr>{% endblock %}{% else %}<tr><td>none</td></tr>{% endfor %}</table>"
        "{% call wrap() %}called {{ name }}{% endcall %}"
        "{% filter upper %}filtered {{ name }}{% endfilter %}"
        "{%- for r in rows -%} {{ loop.index }}{% if not loop.last %},{% endif %} {%- endfor %}"
        "{% include 'row.html' without context %}{% endblock %}"
    ),
    "row.html": "<td>{{ r|default('no r') }}</td>{% for c in 'ab' %}<i>{{ c }}{{ r }}</i>{% endfor %}",
}


def _env(generator):
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
    env.code_generator_class = generator
    return env


@pytest.mark.parametrize(
    "context",
    [
        {"name": "<b>Acme</b>", "rows": ["1", "<2>", "3"], "x": "X"},
        {"name": "empty", "rows": []},
    ],
)
def test_buffered_templates_render_exactly_what_jinja_renders(context):
    plain = _env(CodeGenerator).get_template("page.html").render(**context)
    buffered = _env(BufferedCodeGenerator).get_template("page.html").render(**context)
    assert buffered == plain
    assert "ignored" not in buffered and "<td>no r</td>" in buffered
    assert "<b>" not in buffered  # autoescaped


def test_an_included_template_and_a_block_hand_up_one_piece():
    env = _env(BufferedCodeGenerator)
    context = {"name": "n", "rows": [str(i) for i in range(50)]}
    pieces = list(env.get_template("page.html").generate(**context))
    # Jinja's own generator yields hundreds of pieces here (each text run
    # and expression, re-yielded at every level); buffered, each template
    # level yields its joined output once.
    assert len(list(_env(CodeGenerator).get_template("page.html").generate(**context))) > 300
    assert len(pieces) <= 4


def test_every_template_of_the_app_compiles_and_the_app_uses_the_buffered_generator(app):
    assert app.jinja_env.code_generator_class is BufferedCodeGenerator
    folder = Path(app.root_path).parent / "templates"
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*.html")]
    assert len(names) > 100
    for name in names:
        # compile() does not cache: every template through the buffered generator.
        app.jinja_env.compile(app.jinja_env.loader.get_source(app.jinja_env, name)[0], name=name)
