"""Organization data: the export archive (a job, the settings page, the
command line) and its import into another Tenantry database."""
