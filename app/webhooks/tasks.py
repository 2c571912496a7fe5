"""The webhooks area's jobs (found by ``app.jobs.discover``): ``webhooks.deliver``."""

from app.webhooks.delivery import deliver  # noqa: F401
