"""No 500 for anything a user can type or send.

Generated from ``app.url_map`` (``static`` aside): every route, for every
method it accepts, gets hostile input and must answer below 500. A write
refused with a 4xx must change nothing (a fingerprint of the tenant tables,
the organizations and the users, taken through the owner connection; see
``ALLOWED_ON_REFUSAL`` for the two deliberate exceptions).

Hosts: permission routes run on acme's host; public and sign-in-only routes
(accounts, log-in, invitations, hand-off) on the apex AND on acme's host, as
both serve them. The main requester is acme's Owner (every permission, and a
platform administrator, so the input reaches the view instead of a 403) —
except on public pages, where it is an anonymous visitor; the other one
sends two requests hostile everywhere at once.

What is sent (sampled, not a cartesian product, so the file stays under a
minute):

* every URL variable set, one at a time, to each of ``URL_HOSTILE`` (others
  keep a real acme value from the world);
* query strings with every known parameter name (``PARAM_NAMES``: a fixed
  list plus every ``request.args/form/values.get("...")`` name in app/) set
  to each of ``QUERY_HOSTILE`` (repeated keys, raw undecodable bytes too),
  then each name alone with a value of ``ONE_AT_A_TIME``;
* for writes, a valid CSRF token and every form field name (``FIELD_NAMES``:
  the fields of every FlaskForm in app/*/forms.py plus a generic superset)
  set to each of ``FORM_HOSTILE``; then each field alone hostile among
  ``BENIGN`` values (so validation of another field does not hide it); a
  multipart body with a file in every field, a JSON body, hostile CSRF tokens;
* ``HOSTILE_HEADERS`` (User-Agent, Referer, HX-*...) with benign input;
* every other request with ``HX-Request: true``.

Real URL values come from ``URL_ARGS`` of the access matrix
(tests/rbac/test_matrix.py), globex ids from ``GLOBEX_ID_SQL`` of the
isolation matrix, invitation and reset tokens from the audit route table's
``Ctx``: a URL variable none of them knows fails the test with what to do.
The 500s this found are pinned by the regression tests at the end; the
fixes live in app/web/input_guard.py.
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import re
import zlib
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import text
from werkzeug.datastructures import MultiDict

from app.scoping import all_organizations
from app.web.access import access_of
from tests import factories as f
from tests.audit.test_mutating_routes import Ctx
from tests.conftest import APEX, csrf_token, url
from tests.factories import PASSWORD
from tests.fresh_client import fresh_requests  # noqa: F401  (fixture)
from tests.rbac.conftest import make_role
from tests.rbac.test_matrix import URL_ARGS
from tests.tenancy.test_isolation_matrix import globex_values

IGNORED_METHODS = {"HEAD", "OPTIONS"}
ROOT = Path(__file__).resolve().parent.parent

HUGE = str(10**30)
LONG = "A" * 5000
GLOBEX = object()  # placeholder: "the id of a globex row for this variable"

URL_HOSTILE = [
    "x",
    "../../etc",
    "00000000-0000-0000-0000-000000000000",
    "%00",
    "\x00",
    "a\x00b",
    LONG,
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "-1",
    HUGE,
    "9223372036854775808",
    "ünï✓𝕏",
    GLOBEX,
]

# Query variants: one value (or list of values: repeated keys) for every name.
QUERY_HOSTILE = [
    "-1",
    "-99999999999",
    HUGE,
    "9223372036854775808",
    "1e309",
    "NaN",
    "\x00",
    "a\x00b",
    "ünïcødé ✓ 𝕏 \u202e\u200b",
    ["1", "2", "x"],
    "2026-13-45",
    "-infinity",
    "infinity",
    "",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "../../etc",
    "//evil.example/x",
    "00000000-0000-0000-0000-000000000000",
    LONG,
]
# Query strings that are not even valid UTF-8 / percent-encoding.
RAW_QUERIES = ["q=%ff%fe%00&page=%c0%af&sort=%&status=%zz&before=%00", "&&==&q&page=&=1"]

FORM_HOSTILE = [
    "",
    "\x00",
    "a\x00b",
    "A" * 100_000,
    ["a", "b", "\x00"],
    [],
    "-1",
    HUGE,
    "true",
    "{}",
    "[]",
    "ünïcødé ✓ 𝕏 \u202e",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "2026-13-45",
    "-infinity",
    "00000000-0000-0000-0000-000000000000",
    "../../etc",
]

# Sent one parameter / one field at a time (the others absent or benign), so that
# a value is not hidden behind another field's validation error. Rotated, so
# each name gets one value per route and each route a different pairing.
ONE_AT_A_TIME = [
    "-1",
    HUGE,
    "9223372036854775808",
    "2026-13-45",
    "-infinity",
    LONG,
    ["1", "2"],
    "ünï✓ \u202e",
    "NaN",
    "' OR 1=1 --",
    "00000000-0000-0000-0000-000000000000",
    "",
    "0",
    "1e309",
    "2026-02-30",
]
# Plausible values for the fields a form is not being attacked on. "confirm" is
# "1" (confirms a demotion) and never acme's slug: deleting acme would end the run.
BENIGN = {
    # The acme owner's own credentials: log-in and password checks succeed and go on to store things.
    "email": "owner@acme.test",
    "password": PASSWORD,
    "current_password": PASSWORD,
    "email_password": PASSWORD,
    "name": "Benign Name",
    "description": "Benign description",
    "emails": "benign@example.test",
    "new_email": "benign2@example.test",
    "new_password": "a-long-passphrase-42",
    "confirm_password": "a-long-passphrase-42",
    "password_confirm": "a-long-passphrase-42",
    "status": "active",
    "role": "member",
    "new_role": "member",
    "permissions": "projects:view",
    "confirm": "1",
    "slug": "benign-slug",
    "format": "csv",
    "next": "/",
    "action": "deactivate",
    "dir": "asc",
    "sort": "name",
    "page": "1",
}

# Headers a client controls, hostile (stored ones: User-Agent on sessions and audit events).
HOSTILE_HEADERS = {
    "User-Agent": "Mozilla/5.0\x00<script>" + "U" * 5000,
    "Referer": "javascript:alert(1)//\x00",
    "X-Request-ID": "../../\x00" + "R" * 200,
    "X-Forwarded-For": "not-an-ip, 999.1.1.1, ::gg",
    "HX-Current-URL": "http://evil.example/\x00",
    "HX-Target": "<script>",
    "HX-Trigger": "' OR 1=1 --",
    "Accept-Language": "\x00;q=NaN,*;q=-1",
    "Accept": "application/json;q=\x00",
}

FIXED_PARAMS = (
    "q",
    "page",
    "sort",
    "status",
    "role",
    "cursor",
    "before",
    "after",
    "dir",
    "from",
    "to",
    "action",
    "actor",
    "person",
    "as",
    "target",
    "target_type",
    "target_id",
    "per_page",
    "section",
    "next",
    "format",
    "last",
    "pick",
    "t",
)
GENERIC_FIELDS = (
    "name",
    "email",
    "emails",
    "password",
    "password_confirm",
    "confirm_password",
    "current_password",
    "new_password",
    "description",
    "status",
    "owner_id",
    "role",
    "role_key",
    "new_role",
    "permissions",
    "confirm",
    "user_id",
    "user_ids",
    "ids",
    "action",
    "select_all",
    "all_matching",
    "slug",
    "q",
    "token",
    "next",
    "format",
    "from",
    "to",
)


def _names_in_code() -> set[str]:
    """Every ``request.args/form/values.get("x")``/``getlist("x")`` name in app/."""
    pattern = re.compile(r"""(?:args|form|values)\.get(?:list)?\(\s*["']([A-Za-z_][\w-]*)["']""")
    names = set()
    for path in (ROOT / "app").rglob("*.py"):
        names.update(pattern.findall(path.read_text()))
    return names


def _form_fields() -> set[str]:
    """Field names of every FlaskForm subclass defined in app/*/forms.py."""
    import importlib

    from flask_wtf import FlaskForm
    from wtforms.fields.core import UnboundField

    names = set()
    for path in sorted((ROOT / "app").glob("*/forms.py")):
        module = importlib.import_module(f"app.{path.parent.name}.forms")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, FlaskForm) and cls is not FlaskForm:
                for attr in dir(cls):
                    if isinstance(getattr(cls, attr, None), UnboundField):
                        names.add(attr)
    return names


@functools.lru_cache(maxsize=1)
def _route_table() -> tuple:
    """(endpoint, rule, method, slug, kind) for every route and host it is served on."""
    from app import create_app

    app = create_app(
        {
            "DATABASE_URL": "postgresql://collect-only@127.0.0.1:9/none",
            "SECRET_KEY": "collection-only",
            "TESTING": True,
            "TENANTRY_SERVER_NAME": APEX,
        }
    )
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        access = access_of(app.view_functions[rule.endpoint]) or {}
        slugs = ("acme",) if access.get("kind") == "permission" else (None, "acme")
        for method in sorted(rule.methods - IGNORED_METHODS):
            for slug in slugs:
                rows.append((rule.endpoint, rule.rule, method, slug, access.get("kind")))
    return tuple(sorted(rows, key=lambda r: (r[0], r[2], r[3] or "")))


PARAM_NAMES = tuple(sorted(set(FIXED_PARAMS) | _names_in_code()))
FIELD_NAMES = tuple(sorted((set(GENERIC_FIELDS) | _form_fields() | _names_in_code()) - {"csrf_token"}))


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        routes = _route_table()
        metafunc.parametrize("route", routes, ids=[f"{m}:{e}@{s or 'apex'}" for e, _, m, s, _ in routes])


# --------------------------------------------------------------------------- helpers
VAR_RE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _path(rule: str, values: dict) -> str:
    return VAR_RE.sub(lambda m: quote(str(values[m.group(1)]), safe=""), rule)


def _valid_values(app, world, endpoint: str, rule: str) -> dict:
    """A real acme value for every URL variable of ``rule``."""
    from app.scoping import tenant_context

    ctx = Ctx(app, world)
    extra = {
        "token": lambda w: (
            ctx.reset_token()
            if endpoint == "auth.reset"
            else ctx.invitation()[1]
            if endpoint == "members.accept"
            else "0" * 43
        ),
        "msg_id": lambda w: "0" * 32,
        "subpath": lambda w: "Users",  # the SCIM endpoint's resource path
        "protocol": lambda w: "oidc",  # the SSO callback's protocol
    }
    values = {}
    for var in VAR_RE.findall(rule):
        make = URL_ARGS.get(var) or extra.get(var)
        if make is None:
            pytest.fail(
                f"{endpoint} ({rule}) has URL variable <{var}>: add it to URL_ARGS in "
                "tests/rbac/test_matrix.py (or to `extra` in tests/test_hostile_input.py)"
            )
        with tenant_context(world.acme.id):
            values[var] = make(world)
    return values


# What a refused request may still write, and why (everything else must stay as it was).
ALLOWED_ON_REFUSAL = {
    # A failed password check is a security record, kept on purpose (app/account/views.py).
    # So is a failed step-up or passkey check, and a refusal for want of a recent sign-in (app.auth.stepup).
    # A manual domain check that finds no record is recorded too (app.domains.verify_domain):
    # its time, message and "failed" state on the domain (REFUSAL_COLUMNS), and this event.
    "audit_events": "action NOT IN ('auth.login_failed', 'auth.step_up_failed', 'auth.passkey_failed', "
    "'auth.second_factor_failed', 'auth.step_up_required', 'org.domain_check_failed')",
    # A passkey response that is refused still spends its challenge (single use, app.auth.passkeys).
    "webauthn_challenges": "false",
    # A session's first request to an organization's host records that it reached it, whatever
    # the answer (the members page lists and revokes such sessions): bookkeeping, not a change.
    "session_organizations": "false",
    # The platform organization (home of account events) appears with its first event.
    "organizations": "id <> '00000000-0000-0000-0000-000000000001'",
}
VOLATILE_COLUMNS = ("last_seen_at",)  # activity timestamps refreshed by any signed-in request
# Columns a refusal may write on purpose, per table: a failed manual domain
# check records itself (app.domains.verify_domain). Every other column of
# the table, and its row count, still may not change.
REFUSAL_COLUMNS = {"domains": ("status", "last_checked_at", "last_check_error", "version")}


def _fingerprint_sql(conn) -> str:
    """One statement: row count and md5 of every tenant table, the organizations
    and the users (owner connection: RLS filters nothing), minus
    ``ALLOWED_ON_REFUSAL``, ``VOLATILE_COLUMNS`` and ``REFUSAL_COLUMNS``."""
    from app.rls import tenant_tables

    parts = []
    for table in [*tenant_tables(conn), "organizations", "users"]:
        strip = "".join(f" - '{c}'" for c in (*VOLATILE_COLUMNS, *REFUSAL_COLUMNS.get(table, ())))
        where = ALLOWED_ON_REFUSAL.get(table, "true")
        parts.append(
            f"SELECT '{table}' AS t, count(*) || ':' || md5(coalesce(string_agg(r, '|' ORDER BY r), '')) AS f "
            f'FROM (SELECT (to_jsonb(t){strip})::text AS r FROM "{table}" t WHERE {where}) x'
        )
    return " UNION ALL ".join(parts)


def _query(value) -> str:
    return urlencode([(n, v) for n in PARAM_NAMES for v in (value if isinstance(value, list) else [value])])


def _form(value) -> list:
    values = value if isinstance(value, list) else [value]
    return [(n, v) for n in FIELD_NAMES for v in values]


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 40 else r[:30] + f"...({len(str(value))} chars)"


# --------------------------------------------------------------------------- the test
@pytest.fixture
def hostile_world(world, monkeypatch, fresh_requests):  # noqa: F811
    """The world plus a custom acme role, the owner a platform administrator,
    and the rate limiter off, so that every hostile request reaches the view
    (throttling has its own tests)."""
    from app.extensions import db, limiter

    world.acme_role = make_role(world.acme, "Support", ["org:view", "members:view"], "Answers customers")
    # Also a platform administrator, so that the platform pages read their input too.
    with all_organizations(reason="test: make the owner a platform administrator"):
        world.users["owner"].is_superadmin = True
    db.session.commit()
    f.enrol_totp(world.users["owner"])  # the console needs a second factor
    monkeypatch.setattr(limiter, "enabled", False)
    return world


def test_every_route_is_covered(app):
    """The generated table matches the live url map (nothing skipped but static)."""
    live = {
        (r.endpoint, m) for r in app.url_map.iter_rules() if r.endpoint != "static" for m in r.methods - IGNORED_METHODS
    }
    assert live == {(e, m) for e, _, m, _, _ in _route_table()}


def test_hostile_input_never_gets_a_500(app, hostile_world, login, owner_engine, caplog, request, route):
    """Every hostile request to ``route`` answers below 500; a refused write changes nothing."""
    endpoint, rule, method, slug, kind = route
    world = hostile_world
    valid = _valid_values(app, world, endpoint, rule)
    globex = globex_values(owner_engine, world)
    fallback_globex = globex["project_id"]  # a globex row for variables that name no globex table
    writes = method != "GET"
    # Public pages (log-in, sign-up, invitations...) are for visitors: a signed-in
    # owner is often sent elsewhere before the form is read, so the visitor gets
    # the full treatment there and the owner the short one; the other way round
    # everywhere else.
    owner = login(world.users["owner"], slug)
    visitor = app.test_client()
    client, other = (visitor, owner) if kind == "public" else (owner, visitor)
    who_else = "(owner)" if kind == "public" else "(anonymous)"
    token = csrf_token(client, slug)
    problems: list[str] = []
    n = 0
    conn = owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    request.addfinalizer(conn.close)
    fingerprint_sql = text(_fingerprint_sql(conn))

    def fingerprint() -> dict:
        return dict(conn.execute(fingerprint_sql).all())

    # The app's logger does not propagate: hand its records to caplog to name the cause of a 500.
    app_log = logging.getLogger("tenantry")
    app_log.addHandler(caplog.handler)
    request.addfinalizer(lambda: app_log.removeHandler(caplog.handler))

    last = {"fingerprint": None}  # the state after the previous refused write (saves a query)

    def send(c, path, *, query="", data=None, headers=None, what="", content_type=None, tok=None):
        nonlocal n
        n += 1
        headers = dict(headers or {})
        if n % 2 == 0:
            headers["HX-Request"] = "true"
        if writes and tok is not None:
            headers.setdefault("X-CSRFToken", tok)
        before = (last["fingerprint"] or fingerprint()) if writes else None
        last["fingerprint"] = None
        caplog.clear()
        target = url(slug, path) + (f"?{query}" if query else "")
        if isinstance(data, list):
            data = MultiDict(data)
        try:
            r = c.open(target, method=method, data=data, headers=headers, content_type=content_type)
        except Exception as exc:  # noqa: BLE001 (a crash is exactly what this test looks for)
            problems.append(f"{method} {path[:80]} {what}: raised {exc.__class__.__name__}: {str(exc)[:200]}")
            return
        where = f"{method} {path[:80]}{' (htmx)' if 'HX-Request' in headers else ''} {what}"
        if r.status_code >= 500:
            trace = next((rec.exc_text or "" for rec in caplog.records if rec.exc_info), "").splitlines()
            cause = next((line for line in reversed(trace) if re.match(r"^[\w.]+(Error|Exception)\b", line)), "")
            problems.append(f"{where}: {r.status_code} {cause[:200]}")
        elif writes and 400 <= r.status_code < 500 and before is not None:
            after = last["fingerprint"] = fingerprint()
            changed = [t for t in before if before[t] != after[t]]
            if changed:
                problems.append(f"{where}: answered {r.status_code} but changed {changed}")

    def base_form(tok=token):
        return [("csrf_token", tok)] if writes else None

    # 1. Every URL variable, one at a time, hostile.
    for var in valid:
        for value in URL_HOSTILE:
            if value is GLOBEX:
                value = globex.get(var) or fallback_globex
            send(
                client, _path(rule, {**valid, var: value}), data=base_form(), tok=token, what=f"<{var}>={_short(value)}"
            )

    path = _path(rule, valid)
    # 2. Query strings: every known parameter name, hostile (all variants on reads, a sample on writes).
    queries = [_query(v) for v in QUERY_HOSTILE] + RAW_QUERIES
    if writes:
        queries = queries[::5]
    for q in queries:
        send(client, path, query=q, data=base_form(), tok=token, what=f"?{q[:60]}")
    offset = zlib.crc32(endpoint.encode())
    if not writes:
        for i, name in enumerate(PARAM_NAMES):
            value = ONE_AT_A_TIME[(i + offset) % len(ONE_AT_A_TIME)]
            q = urlencode([(name, v) for v in (value if isinstance(value, list) else [value])])
            send(client, path, query=q, what=f"?{q[:60]}")

    # 3. Writes: every form field name, hostile, with a valid CSRF token.
    if writes:
        for value in FORM_HOSTILE:
            send(client, path, data=[("csrf_token", token), *_form(value)], tok=token, what=f"form={_short(value)}")
        files = {n: (io.BytesIO(b"\x00\xff hostile"), "../../etc/passwd") for n in FIELD_NAMES}
        send(client, path, data={"csrf_token": token, **files}, tok=token, what="form=files in every field")
        send(
            client,
            path,
            data='{"name": ["x"], "confirm": {"a": 1}}',
            content_type="application/json",
            tok=token,
            what="json body",
        )
        for i, name in enumerate(FIELD_NAMES):
            value = ONE_AT_A_TIME[(i + offset) % len(ONE_AT_A_TIME)]
            benign = [(k, BENIGN.get(k, "x")) for k in FIELD_NAMES if k != name]
            hostile = [(name, v) for v in (value if isinstance(value, list) else [value])]
            send(
                client, path, data=[("csrf_token", token), *benign, *hostile], tok=token, what=f"{name}={_short(value)}"
            )
        for bad in ("\x00", "A" * 5000, ""):
            send(client, path, data=[("csrf_token", bad), *_form("x")], tok=bad, what=f"csrf={_short(bad)}")

    # 4. Hostile headers, from a fresh client (the benign log-in above signed the visitor in)
    # with benign input, so that the view runs as far as it can.
    fresh = app.test_client() if kind == "public" else login(world.users["owner"], slug)
    fresh_token = csrf_token(fresh, slug)
    send(
        fresh,
        path,
        headers=HOSTILE_HEADERS,
        tok=fresh_token,
        what="hostile headers",
        data=[("csrf_token", fresh_token), *[(k, BENIGN.get(k, "x")) for k in FIELD_NAMES]] if writes else None,
    )

    # 5. The other requester (anonymous, or the owner on public pages): hostile everywhere at once.
    other_token = csrf_token(other, slug)
    send(
        other,
        _path(rule, dict.fromkeys(valid, "' OR 1=1 --\x00")),
        query=_query("\x00"),
        tok=other_token,
        data=[("csrf_token", other_token), *_form("a\x00b")] if writes else None,
        what=who_else,
    )
    send(
        other,
        path,
        query=_query(HUGE),
        tok=other_token,
        data=[("csrf_token", other_token), *_form(["", "x"])] if writes else None,
        what=who_else,
    )

    assert n > 0
    assert not problems, f"{len(problems)} of {n} hostile requests failed:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- regressions
# Each 500 the generated test found, pinned by name (fixed in app/web/input_guard.py).


def _count(owner_engine, sql: str) -> int:
    with owner_engine.connect() as c:
        return c.execute(text(sql)).scalar()


def test_nul_byte_in_a_form_field_is_refused_and_changes_nothing(app, world, login, owner_engine):
    """Was a 500 (PostgreSQL text fields cannot contain NUL) on /account/name,
    /settings/general and /login."""
    c = login(world.users["owner"])
    r = c.post(url(None, "/account/name"), data={"csrf_token": csrf_token(c), "name": "Evil\x00Name"})
    assert r.status_code == 400
    assert _count(owner_engine, "SELECT count(*) FROM users WHERE name LIKE 'Evil%'") == 0
    c = login(world.users["owner"], "acme")
    r = c.post(url("acme", "/settings/general"), data={"csrf_token": csrf_token(c, "acme"), "name": "a\x00b"})
    assert r.status_code == 400
    assert _count(owner_engine, "SELECT count(*) FROM organizations WHERE name = 'Acme Corporation'") == 1


def test_nul_byte_in_the_address_is_refused(app, world, login):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/projects/?q=a%00b")).status_code == 400
    assert c.get(url("acme", "/projects/a%00b")).status_code == 404  # names nothing, like any bad id


def test_nul_byte_in_the_user_agent_does_not_break_log_in(app, world, owner_engine):
    """Was a 500: the User-Agent header is stored with the new session."""
    c = app.test_client()
    before = _count(owner_engine, "SELECT count(*) FROM user_sessions")
    r = c.post(
        url(None, "/login"),
        headers={"User-Agent": "Mozilla/5.0\x00"},
        data={"csrf_token": csrf_token(c), "email": "owner@acme.test", "password": PASSWORD},
    )
    assert r.status_code == 400
    assert _count(owner_engine, "SELECT count(*) FROM user_sessions") == before


def test_a_file_sent_in_a_text_field_is_refused(app, world, login, owner_engine):
    """Was a 500 (FileStorage has no len()) on every form: Flask-WTF reads files into fields."""
    c = login(world.users["owner"], "acme")
    before = _count(owner_engine, "SELECT count(*) FROM projects")
    r = c.post(
        url("acme", "/projects/"),
        content_type="multipart/form-data",
        data={"csrf_token": csrf_token(c, "acme"), "name": (io.BytesIO(b"x"), "name.txt")},
    )
    assert r.status_code == 400
    assert b"does not accept files" in r.data
    assert _count(owner_engine, "SELECT count(*) FROM projects") == before


def test_a_json_body_sent_to_a_form_is_refused(app, world, login, owner_engine):
    """Was a 500 ('dict' object has no attribute 'strip') on /settings/delete."""
    c = login(world.users["owner"], "acme")
    token = csrf_token(c, "acme")
    r = c.post(url("acme", "/settings/delete"), json={"confirm": {"a": 1}}, headers={"X-CSRFToken": token})
    assert r.status_code == 415
    assert _count(owner_engine, "SELECT count(*) FROM organizations WHERE slug = 'acme' AND deleted_at IS NULL") == 1


def test_an_event_id_beyond_bigint_is_not_found(app, world, login):
    """Was a 500 (integer out of range) on /audit/<int:event_id> and /platform/audit/<int:event_id>."""
    from app.extensions import db

    with all_organizations(reason="test: make the owner a platform administrator"):
        world.users["owner"].is_superadmin = True
    db.session.commit()
    f.enrol_totp(world.users["owner"])  # the console needs a second factor
    c = login(world.users["owner"], "acme")
    for event_id in (2**63 - 1, 2**63, 10**30):
        assert c.get(url("acme", f"/audit/{event_id}")).status_code == 404
    apex = login(world.users["owner"])
    assert apex.get(url(None, f"/platform/audit/{2**63}")).status_code == 404


def test_a_view_marked_accepts_files_receives_them():
    """The guard's one opt-out, on a throwaway app."""
    from flask import Flask
    from flask import request as flask_request

    from app.web import input_guard

    tiny = Flask(__name__)
    input_guard.init_app(tiny)

    @tiny.post("/upload")
    @input_guard.accepts_files
    def upload():
        return str(len(flask_request.files["f"].read()))

    @tiny.post("/form")
    def form():
        return "ok"

    c = tiny.test_client()
    assert c.post("/upload", data={"f": (io.BytesIO(b"abc"), "f.txt")}).get_data(as_text=True) == "3"
    assert c.post("/form", data={"f": (io.BytesIO(b"abc"), "f.txt")}).status_code == 400
