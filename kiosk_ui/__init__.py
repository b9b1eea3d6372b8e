"""The kiosk web UI: a Flask app factory over the daemon's services."""

from __future__ import annotations

from flask import Flask

from edge.services import Services


def create_app(services: Services) -> Flask:
    """Build the kiosk Flask app bound to the running appliance's services."""
    app = Flask(__name__)
    app.config.update(
        # Kiosk requests are small; anything bigger is a mistake or an attack.
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["kiosk_services"] = services

    from kiosk_ui.blueprints import api, compare, product, search, shopper
    from kiosk_ui.web import init_web

    init_web(app, services)  # i18n, CSRF, security headers, session hooks, /media/
    app.register_blueprint(shopper.bp)
    app.register_blueprint(search.bp)
    app.register_blueprint(product.bp)
    app.register_blueprint(compare.bp)
    app.register_blueprint(api.bp, url_prefix="/api")
    from kiosk_ui.blueprints import admin  # store IT's page (issue 8)

    app.register_blueprint(admin.bp, url_prefix="/admin")
    from kiosk_ui.blueprints import takeaway

    app.register_blueprint(takeaway.bp, url_prefix="/api/takeaway")
    return app


def services_of(app: Flask) -> Services:
    """The Services the app was created with."""
    services: Services = app.extensions["kiosk_services"]
    return services
