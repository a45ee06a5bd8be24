"""The web dashboard served by the daemon's HTTP server: routes (`routes.py`), the document it shows
(`state.py`, `timeline.py`) and the page itself (`static/`, package data). docs/dashboard.md."""

from bot.service.dashboard.routes import install_dashboard

__all__ = ["install_dashboard"]
