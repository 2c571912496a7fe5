"""Personal data: a person's export of everything Tenantry holds about them,
and the deletion of their account (``/account/privacy`` on the apex).

* **Export** (``services.request_export``): a job (``privacy.build_export``)
  builds a ZIP of JSON files - profile, memberships, sessions, second
  factors' metadata (never a secret or a hash), audit events where the
  person is the actor or the target, invitations, API keys' metadata - and
  keeps it in the database row for 24 hours; the person gets an e-mailed
  link signed for their account only. The link works for 24 hours, only
  when signed in as that person; then ``privacy.purge_exports`` deletes the
  archive. Every step is audited.
* **Deletion** (``services.delete_account``): confirmed by typing the
  e-mail address, the password and - when the account has one - a current
  second factor (the seam for a shared step-up check is
  ``services.step_up``). Refused while the person is the only owner of an
  organization (the page names them). The request signs the person out
  everywhere and anonymises the account at once; the job
  ``privacy.erase_account`` then removes the rest - memberships, sessions,
  factors, invitations, their API keys revoked - and erases them from the
  audit log without breaking its proof (``app.auditlog.erasure`` explains
  how).
"""
