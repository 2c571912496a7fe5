"""merge the audit and members branches into one head

Revision ID: 0004_merge_audit_members
Revises: 0002_audit, 0003_invitations

The audit log and the members area were built side by side, each branching
from 0001_foundation; they touch different tables, so the merge is empty.
"""

revision = "0004_merge_audit_members"
down_revision = ("0002_audit", "0003_invitations")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
