"""hand-off tickets are bound to the browser that asked for them

Revision ID: 0006_handoff_browser_binding
Revises: 0005_enter_organization

``auth_handoffs.nonce_hash``: the SHA-256 of a random nonce that the target
host set as a cookie in the browser before asking the apex for a ticket. The
ticket is redeemed only next to that cookie, so a ticket an attacker obtained
for their own account cannot sign a victim's browser in as the attacker
(login CSRF). Tickets live 60 seconds at most: the ones in flight during the
upgrade are dropped rather than given a nonce nobody holds.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_handoff_browser_binding"
down_revision = "0005_enter_organization"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM auth_handoffs")
    op.add_column("auth_handoffs", sa.Column("nonce_hash", sa.String(length=64), nullable=False))


def downgrade():
    op.drop_column("auth_handoffs", "nonce_hash")
