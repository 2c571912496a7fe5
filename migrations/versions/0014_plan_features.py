"""plans: one boolean column per sellable feature

Revision ID: 0014_plan_features
Revises: 0013_invitation_message_version

Features are asked by name through ``app.tenancy.entitlements.entitled``;
each is a column here so that the console edits plans as data and a new
feature is one migration. Values:

* free: api, custom_roles
* pro: + branding, custom_domains, ip_allowlist
* enterprise: + sso, scim, audit_streaming

Rollback: ``flask --app wsgi db downgrade 0013_invitation_message_version``
drops the columns (plans' feature choices are lost).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_plan_features"
down_revision = "0013_invitation_message_version"
branch_labels = None
depends_on = None

FEATURES = {
    "api": ("free", "pro", "enterprise"),
    "custom_roles": ("free", "pro", "enterprise"),
    "branding": ("pro", "enterprise"),
    "custom_domains": ("pro", "enterprise"),
    "ip_allowlist": ("pro", "enterprise"),
    "sso": ("enterprise",),
    "scim": ("enterprise",),
    "audit_streaming": ("enterprise",),
}


def upgrade():
    for name, plans in FEATURES.items():
        op.add_column("plans", sa.Column(f"feature_{name}", sa.Boolean(), nullable=False, server_default=sa.false()))
        op.execute(
            sa.text(f"UPDATE plans SET feature_{name} = true WHERE key = ANY(:keys)").bindparams(keys=list(plans))
        )


def downgrade():
    for name in FEATURES:
        op.drop_column("plans", f"feature_{name}")
