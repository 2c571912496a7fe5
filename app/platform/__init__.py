"""The platform console: what super-admins see and do on the apex, under
``/platform`` (organizations, users, support impersonation, jobs, health).

``gate`` holds the blueprint and its one gate; ``views`` the pages; the
services beside them (``organizations``, ``users``, ``support``,
``overview``, ``health``) do the work, across organizations only through
``all_organizations(reason=...)``.
"""
