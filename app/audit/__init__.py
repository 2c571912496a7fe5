"""Audit log: ``record()`` is the one call every change makes.

(Interim: the audit issue replaces this module with the tamper-evident store.)
"""
from __future__ import annotations

import logging

log = logging.getLogger("tenantry.audit")


def record(action: str, target=None, before=None, after=None, metadata=None, organization_id=None, actor=None):
    log.info("audit %s", action)
