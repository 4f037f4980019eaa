"""The shop with the fixed middleware: asgifuzz fuzz --app app_fixed:app"""

from __future__ import annotations

from app import make_app
from middleware import CancelOnDisconnectMiddlewareFixed

app = make_app(CancelOnDisconnectMiddlewareFixed)
