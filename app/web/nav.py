"""The navigation registry: what each area shows outside its own pages.

An area declares, beside its blueprint, its links in the organization's side
navigation, the page an entity of its kind links to (the audit viewer links
an event's actor and target there), and what it adds to the dashboard: a
figure, a getting-started step, a panel::

    bp = Blueprint("projects", __name__, url_prefix="/projects")
    nav.link(bp, "index", "Projects", section="main", order=20)
    nav.entity_page(bp, "project", "show", lambda pid: {"project_id": pid})

Declarations ride on the blueprint and reach the app when it is registered,
so an area that is not registered has no entries, and no list anywhere names
the areas: a new area adds itself in its own package.

Who sees a link is not declared twice: a link is shown exactly when the
member's role may open its endpoint, as that view's own ``@require...``
guard says. The organization's root lands on the first link shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, Flask, current_app, g, request, url_for
from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement
from werkzeug.routing import BuildError

from app.extensions import db
from app.web.access import may_open

# Side-navigation sections, in order; ``None``: headed by the organization's name.
SECTIONS = {"main": None, "admin": "Administration"}

_KEY = "tenantry.nav"


@dataclass(frozen=True)
class Link:
    endpoint: str
    label: str
    section: str
    order: int
    when: Callable[[], bool] | None = None  # shown only while this holds (e.g. the plan has the feature)


@dataclass(frozen=True)
class EntityPage:
    endpoint: str
    values: Callable[[str], dict]


@dataclass(frozen=True)
class Figure:
    label: str
    order: int
    compute: Callable  # (organization) -> (value, hint or None)


@dataclass(frozen=True)
class Step:
    """A getting-started step: ``done(org)`` is a SQL boolean (or a plain bool)."""

    key: str
    label: str
    hint: str
    endpoint: str
    requires: str | None  # a permission; None: whoever may open ``endpoint``
    order: int
    done: Callable


@dataclass(frozen=True)
class Panel:
    """A dashboard panel: ``template`` drawn with ``compute(org)``, for members who may open ``endpoint``."""

    key: str
    template: str
    endpoint: str
    order: int
    compute: Callable  # (organization) -> dict, the template's context


@dataclass
class _Registry:
    links: list[Link] = field(default_factory=list)
    entity_pages: dict[str, EntityPage] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    console: list[Link] = field(default_factory=list)


def _registry(app: Flask) -> _Registry:
    return app.extensions.setdefault(_KEY, _Registry())


# --------------------------------------------------------------------------- declaring (each area)
def link(
    bp: Blueprint, view: str, label: str, *, section: str, order: int, when: Callable[[], bool] | None = None
) -> None:
    """A side-navigation link to ``bp``'s ``view`` (an endpoint without
    arguments), shown to members who may open it and, with ``when``, only
    while ``when()`` holds (an area whose plan feature the organization lacks
    answers "not on your plan": no link leads there)."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}; known: {sorted(SECTIONS)}")
    entry = Link(f"{bp.name}.{view}", label, section, order, when)
    bp.record_once(lambda state: _registry(state.app).links.append(entry))


def entity_page(bp: Blueprint, kinds: str | tuple[str, ...], view: str, values: Callable[[str], dict]) -> None:
    """The page of an entity of ``kinds`` (an audit event's actor or target
    type): ``bp``'s ``view`` with ``values(entity_id)`` as its URL values."""
    page = EntityPage(f"{bp.name}.{view}", values)

    def register(state):
        pages = _registry(state.app).entity_pages
        for kind in (kinds,) if isinstance(kinds, str) else kinds:
            if kind in pages:
                raise ValueError(f"two areas declare the page of a {kind!r}")
            pages[kind] = page

    bp.record_once(register)


def dashboard_figure(bp: Blueprint, label: str, compute: Callable, *, order: int) -> None:
    """A figure on the organization's dashboard: ``compute(org)`` returns
    ``(value, hint or None)``, the value a plain one or a SQL expression (every
    figure's and checklist step's expression goes into one statement)."""
    figure = Figure(label, order, compute)
    bp.record_once(lambda state: _registry(state.app).figures.append(figure))


def getting_started(
    bp: Blueprint,
    key: str,
    label: str,
    *,
    view: str,
    done: Callable,
    hint: str,
    order: int,
    requires: str | None = None,
) -> None:
    """A step of a new organization's getting-started checklist, linking to
    ``bp``'s ``view``. ``done(org)`` says whether it is done from real data:
    a SQL boolean expression (every step's goes into one statement), or a
    plain ``bool``. Shown to members who may act on it: who may open
    ``view``, and hold ``requires`` when given."""
    step = Step(key, label, hint, f"{bp.name}.{view}", requires, order, done)
    bp.record_once(lambda state: _registry(state.app).steps.append(step))


def dashboard_panel(bp: Blueprint, key: str, template: str, compute: Callable, *, view: str, order: int) -> None:
    """A panel on the dashboard (``template`` with ``compute(org)`` as its
    context), for members who may open ``bp``'s ``view`` (what it summarises)."""
    panel = Panel(key, template, f"{bp.name}.{view}", order, compute)
    bp.record_once(lambda state: _registry(state.app).panels.append(panel))


def console_link(bp: Blueprint, view: str, label: str) -> None:
    """A link in the user menu shown to super-admins only (the platform
    console); its blueprint gates the pages themselves."""
    entry = Link(f"{bp.name}.{view}", label, "console", 0)
    bp.record_once(lambda state: _registry(state.app).console.append(entry))


def console_links(user) -> list[Link]:
    """The console links for ``user``: all of them for a super-admin, none otherwise."""
    if not getattr(user, "is_superadmin", False):
        return []
    return list(_registry(current_app).console)


# --------------------------------------------------------------------------- reading (shared pages)
def links() -> list[Link]:
    """The side-navigation links the current member may open, section by section."""
    held = g.get("permissions", frozenset())
    order = list(SECTIONS)
    views = current_app.view_functions
    shown = [
        x for x in _registry(current_app).links if may_open(views[x.endpoint], held) and (x.when is None or x.when())
    ]
    return sorted(shown, key=lambda x: (order.index(x.section), x.order, x.label))


def sections() -> list[tuple[str | None, list[tuple[Link, str, bool]]]]:
    """For the side navigation: ``(heading, [(link, url, active)])`` for the
    first section (headed by the organization's name, always shown) and every
    other section with a link to show. A link is active on every page under
    its own URL (``/projects/...`` for ``/projects/``)."""
    out: dict[str, list] = {next(iter(SECTIONS)): []}
    for x in links():
        href = url_for(x.endpoint)
        out.setdefault(x.section, []).append((x, href, request.path.startswith(href.rstrip("/") or "/")))
    return [(SECTIONS[s], items) for s, items in out.items()]


def landing_url() -> str | None:
    """Where the organization's root sends the current member: the first link
    they may open (a custom role may lack the dashboard), or ``None``."""
    shown = links()
    return url_for(shown[0].endpoint) if shown else None


def entity_url(kind: str, entity_id) -> str | None:
    """The page of an entity, when an area declared one for ``kind``."""
    page = _registry(current_app).entity_pages.get(kind)
    if page is None or entity_id is None:
        return None
    try:
        return url_for(page.endpoint, **page.values(str(entity_id)))
    except BuildError:
        return None


def _may_act(endpoint: str, requires: str | None) -> bool:
    held = g.get("permissions", frozenset())
    return may_open(current_app.view_functions[endpoint], held) and (requires is None or requires in held)


_FIGURE_STATEMENTS: dict[tuple, tuple] = {}


def _figures_statement(asked: dict[str, ColumnElement]):
    """``SELECT <each expression> AS <its name>``, built once per set of
    expression objects. The areas hand out the same objects every time (they
    name neither an organization nor an instant), so the dashboard stops
    rebuilding a statement whose building cost more than its answer; an
    area that builds new ones each time still works, it just gains nothing
    (the cache is bounded)."""
    key = tuple((name, id(expr)) for name, expr in asked.items())
    hit = _FIGURE_STATEMENTS.get(key)
    # The entry keeps its expressions alive, so their ids cannot be reused
    # by other objects while the entry exists.
    if hit is None or any(a is not b for a, b in zip(hit[0], asked.values(), strict=True)):
        if len(_FIGURE_STATEMENTS) >= 64:
            _FIGURE_STATEMENTS.clear()
        hit = (tuple(asked.values()), select(*[expr.label(k) for k, expr in asked.items()]))
        _FIGURE_STATEMENTS[key] = hit
    return hit[1]


def dashboard(org, with_checklist: bool = True) -> tuple[list[tuple[str, object, str | None]], list]:
    """The dashboard's figures, ``(label, value, hint)`` in order, and its
    getting-started checklist, ``(step, done, url)`` of every step the
    current member may act on, in order (none without ``with_checklist``).

    One statement at most: the SQL answers of every figure and every step
    are selected together (none when every answer is a plain value).
    """
    figures = [
        (f.label, *f.compute(org)) for f in sorted(_registry(current_app).figures, key=lambda f: (f.order, f.label))
    ]
    steps = []
    if with_checklist:
        steps = sorted(
            (s for s in _registry(current_app).steps if _may_act(s.endpoint, s.requires)),
            key=lambda s: (s.order, s.key),
        )
    done = {s.key: s.done(org) for s in steps}
    asked = {f"figure_{i}": value for i, (_l, value, _h) in enumerate(figures) if isinstance(value, ColumnElement)}
    asked.update({f"step_{i}": done[s.key] for i, s in enumerate(steps) if isinstance(done[s.key], ColumnElement)})
    answers = {}
    if asked:
        answers = db.session.execute(_figures_statement(asked)).one()._asdict()
    figures = [(label, answers.get(f"figure_{i}", value), hint) for i, (label, value, hint) in enumerate(figures)]
    checklist = [(s, bool(answers.get(f"step_{i}", done[s.key])), url_for(s.endpoint)) for i, s in enumerate(steps)]
    return figures, checklist


def dashboard_panels(org) -> list[tuple[Panel, dict]]:
    """``(panel, context)`` of every dashboard panel the current member may see, in order."""
    held = g.get("permissions", frozenset())
    views = current_app.view_functions
    panels = sorted(
        (p for p in _registry(current_app).panels if may_open(views[p.endpoint], held)), key=lambda p: (p.order, p.key)
    )
    return [(p, p.compute(org)) for p in panels]


def init_app(app: Flask) -> None:
    app.add_template_global(sections, "nav_sections")
    app.add_template_global(console_links, "nav_console_links")
