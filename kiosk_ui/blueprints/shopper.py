"""The shopper's screens."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from kiosk_ui import services_of

bp = Blueprint("shopper", __name__)


@bp.get("/")
def home() -> str:
    """The attract screen (or "needs attention" when the configuration is unusable)."""
    services = services_of(current_app)
    if services.config_problems:
        return render_template("attention.html", problems=services.config_problems)
    return render_template("home.html")
