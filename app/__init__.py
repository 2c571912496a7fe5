"""Tenantry: the application factory. It only wires things together."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import (
    blueprints,
    cli,
    database,
    jobs,
    models,  # noqa: F401  (every model registered on the metadata)
    ops,
    scoping,
)
from app import config as config_module
from app.extensions import csrf, db, limiter, login_manager, migrate
from app.tenancy import request as tenancy_request
from app.web import input_guard, nav, templating


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, tenancy hooks, blueprints, CLI."""
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_path=str(config_module.BASE_DIR / "instance"),
    )
    app.config.update(config_module.load(overrides))
    config_module.check(app.config)  # fail closed before anything is served
    database.resolve(app.config)

    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config_module.BASE_DIR / "migrations"), compare_type=True)
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side records
    csrf.init_app(app)
    limiter.init_app(app)

    scoping.install(scoping.TenantSession)

    ops.init_app(app)
    templating.init_app(app)
    nav.init_app(app)
    input_guard.init_app(app)  # before the host hook and the blueprints (it bounds <int:...>)
    tenancy_request.init_app(app)

    blueprints.register(app)

    jobs.discover()  # every area's jobs and periodic schedules, for workers and for enqueueing by name
    cli.init_app(app)
    return app
