"""SCIM 2.0 provisioning: the organization's identity provider adds,
updates and deactivates its members and groups (``protocol``: the
``/scim/v2/`` endpoint; ``storage``: how resources map to accounts,
memberships and groups; ``tokens``; ``views``: the settings page)."""
