"""The feed with the fixed middleware: asgifuzz fuzz --app main_fixed:app"""

from __future__ import annotations

from main import make_app
from middleware import TimeoutMiddlewareFixed

app = make_app(TimeoutMiddlewareFixed)
