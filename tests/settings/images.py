"""Images for the branding tests, drawn with Pillow at test time."""

from __future__ import annotations

import io


def png(width: int = 64, height: int = 32, colour=(29, 78, 216)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 64, height: int = 32) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def set_logo(world) -> None:
    """Give acme a logo directly through the service (as its setup)."""
    from app.extensions import db
    from app.scoping import all_organizations, tenant_context
    from app.settings import services
    from app.tenancy.models import Organization

    with tenant_context(world.acme.id):
        with all_organizations(reason="test: read an organization"):
            org = db.session.get(Organization, world.acme.id)
        services.set_logo(org, png())
        db.session.commit()
