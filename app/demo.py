"""Demo data: ``flask --app wsgi demo``. Idempotent: running it twice changes nothing.

Every demo account's password is ``tenantry-demo``.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.auth.models import User
from app.auth.passwords import hash_password
from app.extensions import db
from app.tenancy.models import Membership, Organization
from app.tenancy.scoping import all_organizations, tenant_context
from app.util import utcnow

PASSWORD = "tenantry-demo"

ORGS = [
    # slug, name, plan
    ("acme", "Acme Corporation", "pro"),
    ("globex", "Globex", "free"),
]

USERS = [
    # email, name, super-admin, {org: role}
    ("super@tenantry.test", "Sam Super", True, {}),
    ("owner@acme.test", "Olivia Owner", False, {"acme": "owner"}),
    ("admin@acme.test", "Adam Admin", False, {"acme": "admin"}),
    ("manager@acme.test", "Mona Manager", False, {"acme": "manager"}),
    ("member@acme.test", "Max Member", False, {"acme": "member"}),
    ("viewer@acme.test", "Vera Viewer", False, {"acme": "viewer"}),
    ("owner@globex.test", "Hank Scorpio", False, {"globex": "owner"}),
    ("member@globex.test", "Frank Globex", False, {"globex": "member"}),
    ("consultant@example.test", "Casey Consultant", False, {"acme": "member", "globex": "admin"}),
]

PROJECTS = {
    "acme": ["Rocket Skates", "Giant Magnet", "Earthquake Pills", "Tornado Seeds", "Dehydrated Boulders",
             "Iron Carrot", "Jet-Propelled Pogo Stick", "Invisible Paint", "Instant Icicle Maker",
             "Bat-Man Outfit", "Super Outfit", "Spring-Powered Shoes", "Triple-Strength Fortified Leg Muscle Vitamins",
             "Do-It-Yourself Tornado Kit", "Rocket Sled", "Axle Grease", "Bird Seed", "Portable Hole",
             "Artificial Rock", "Explosive Tennis Balls", "Hi-Speed Tonic", "Desert Pipeline",
             "Catapult Mk II", "Anvil Logistics", "Road Runner Research"],
    "globex": ["Doomsday Device", "Hammock District", "Monorail", "Cypress Creek Campus", "Volcano Lair",
               "Employee Wellness", "Sales Kickoff", "Supply Chain Audit", "Brand Refresh", "Recruiting Drive"],
}


def load_demo() -> str:
    """Create everything missing; leave what exists alone. Returns a summary."""
    from app.projects.models import Project

    created = {"users": 0, "organizations": 0, "memberships": 0, "projects": 0}
    pw_hash = None
    with all_organizations(reason="demo data loader"):
        orgs = {}
        for slug, name, plan in ORGS:
            org = db.session.execute(
                select(Organization).where(Organization.slug == slug, Organization.deleted_at.is_(None))
            ).scalar_one_or_none()
            if org is None:
                org = Organization(slug=slug, name=name, plan_key=plan)
                db.session.add(org)
                db.session.flush()
                created["organizations"] += 1
            orgs[slug] = org
        users = {}
        for email, name, superadmin, roles in USERS:
            user = db.session.execute(select(User).where(func.lower(User.email) == email)).scalar_one_or_none()
            if user is None:
                pw_hash = pw_hash or hash_password(PASSWORD)
                user = User(email=email, name=name, password_hash=pw_hash, email_verified_at=utcnow(),
                            password_changed_at=utcnow(), is_superadmin=superadmin)
                db.session.add(user)
                db.session.flush()
                created["users"] += 1
            users[email] = user
            for slug, role in roles.items():
                org = orgs[slug]
                exists = db.session.get(Membership, (org.id, user.id))
                if exists is None:
                    db.session.add(Membership(organization_id=org.id, user_id=user.id, role=role))
                    created["memberships"] += 1
        db.session.flush()
    for slug, names in PROJECTS.items():
        org = orgs[slug]
        owner_email = next(e for e, _, _, r in USERS if r.get(slug) == "owner")
        with tenant_context(org.id):
            have = set(db.session.execute(select(Project.name)).scalars())
            for i, pname in enumerate(names):
                if pname in have:
                    continue
                db.session.add(Project(
                    name=pname, description=f"{pname}: a demo project of {org.name}.",
                    status="archived" if i % 9 == 8 else "active", owner_id=users[owner_email].id,
                ))
                created["projects"] += 1
            db.session.flush()
    db.session.commit()
    return ", ".join(f"{v} {k}" for k, v in created.items()) + " created"
