"""The IdP's metadata as an uploaded file (the issue: "IdP metadata by URL or
upload"): the SAML settings form takes it in its one file input; a file that
is not XML SAML metadata, or too large, is 422 beside that input with nothing
changed; a file in any other field is refused by the input guard (400)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db
from app.scoping import tenant_context
from app.sso import saml_protocol
from app.sso.models import SsoConnection
from tests.conftest import csrf_token, url
from tests.sso.conftest import post_form
from tests.sso.saml_idp import IdentityProvider

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def idp():
    peer = IdentityProvider()  # its metadata only: no server needed
    yield peer


def _saml_connection(c) -> str:
    r = post_form(c, "acme", "/settings/sso/", {"provider": "generic", "protocol": "saml", "name": "Acme SAML"})
    assert r.status_code == 302, r.get_data(as_text=True)[:400]
    return r.headers["Location"].rsplit("/", 1)[-1]


def _conn(org) -> SsoConnection:
    with tenant_context(org.id):
        db.session.expire_all()
        return db.session.execute(select(SsoConnection)).scalar_one()


def _upload(c, cid, body: bytes, filename="metadata.xml", **fields):
    data = {
        "csrf_token": csrf_token(c, "acme"),
        "name": "Acme SAML",
        "default_role": "member",
        "version": str(fields.pop("version", 1)),
        "idp_metadata_url": "",
        "idp_metadata": "",
        "idp_metadata_file": (io.BytesIO(body), filename),
        **fields,
    }
    return c.post(url("acme", f"/settings/sso/{cid}"), data=data, content_type="multipart/form-data")


def _changes(org) -> int:
    with tenant_context(org.id):
        return len(db.session.execute(select(AuditEvent.id).where(AuditEvent.action == "sso.connection_changed")).all())


def test_the_saml_settings_form_offers_a_metadata_file_input(app, sso_org, world, login):
    c = login(world.users["owner"], "acme")
    cid = _saml_connection(c)
    body = c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in body
    assert 'type="file"' in body and 'name="idp_metadata_file"' in body
    assert "upload" in body.lower()


def test_uploaded_metadata_file_configures_the_connection(app, sso_org, world, login, idp):
    c = login(world.users["owner"], "acme")
    cid = _saml_connection(c)
    r = _upload(c, cid, idp.metadata().encode())
    assert r.status_code == 302, r.get_data(as_text=True)[:600]
    conn = _conn(sso_org)
    assert conn.config["idp_entity_id"] == idp.entity_id
    assert conn.config["idp_sso_url"].startswith("http")
    assert "idp_metadata_file" not in conn.config
    assert _changes(sso_org) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"%PDF-1.4 not xml at all", "not XML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not XML"),
        (b"<nope", "not valid SAML metadata"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DOCTYPE"),
        (b"<a>" + b"x" * (saml_protocol.MAX_METADATA_BYTES + 10) + b"</a>", "too large"),
    ],
    ids=["pdf", "png", "broken-xml", "entities", "oversized"],
)
def test_a_file_that_is_not_metadata_is_422_beside_the_input_and_changes_nothing(
    app, sso_org, world, login, body, words
):
    c = login(world.users["owner"], "acme")
    cid = _saml_connection(c)
    before = dict(_conn(sso_org).config or {})
    r = _upload(c, cid, body)
    page = r.get_data(as_text=True)
    assert r.status_code == 422, page[:400]
    assert 'id="idp_metadata_file-error"' in page
    assert words.lower() in page.lower()
    conn = _conn(sso_org)
    assert conn.config == before and conn.version == 1
    assert _changes(sso_org) == 0


def test_a_file_in_a_text_field_of_the_form_is_refused(app, sso_org, world, login, idp):
    c = login(world.users["owner"], "acme")
    cid = _saml_connection(c)
    r = _upload(c, cid, idp.metadata().encode(), name=(io.BytesIO(b"x"), "name.txt"))
    assert r.status_code == 400
    assert b"does not accept files" in r.data
    assert _changes(sso_org) == 0


def test_other_forms_still_refuse_files(app, sso_org, world, login, idp):
    c = login(world.users["owner"], "acme")
    r = c.post(
        url("acme", "/settings/sso/"),
        data={"csrf_token": csrf_token(c, "acme"), "idp_metadata_file": (io.BytesIO(b"<x/>"), "m.xml")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400
