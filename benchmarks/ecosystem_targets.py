"""Factories for the ecosystem campaign (``scripts/ecosystem``, ``scripts/ecosystem.toml``).

Each is a ``--middleware ecosystem_targets:NAME`` factory: called with the app below
it, it returns that third-party middleware configured the way its documentation
shows, with in-memory stand-ins for what would talk to the network (an exporter, a
transport, a metrics client). Only the package named in the function is imported,
inside it: each runs in that package's own venv, where the others are absent.
Nothing here draws requests: the requests are asgifuzz's own.
"""

from __future__ import annotations

from typing import Any

App = Any


def starlette_context(app: App) -> App:
    """starlette-context's ``RawContextMiddleware`` with its header plugins."""
    # the package exists only in its campaign venv
    from starlette_context import plugins
    from starlette_context.middleware import RawContextMiddleware

    return RawContextMiddleware(
        app,
        plugins=(
            plugins.RequestIdPlugin(),
            plugins.CorrelationIdPlugin(),
            plugins.UserAgentPlugin(),
            plugins.ForwardedForPlugin(),
        ),
    )


_TRACER_PROVIDER: Any = None


def opentelemetry(app: App) -> App:
    """``OpenTelemetryMiddleware`` with an SDK tracer provider whose spans are
    exported (synchronously) to an exporter that keeps nothing."""
    # the packages exist only in their campaign venv
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    global _TRACER_PROVIDER
    if _TRACER_PROVIDER is None:
        _TRACER_PROVIDER = TracerProvider()
        _TRACER_PROVIDER.add_span_processor(SimpleSpanProcessor(Discard()))
    return OpenTelemetryMiddleware(app, tracer_provider=_TRACER_PROVIDER)


_SENTRY_READY = False


def sentry(app: App) -> App:
    """``SentryAsgiMiddleware`` after ``sentry_sdk.init`` with tracing on and a
    transport that drops the envelopes (no network)."""
    # the package exists only in its campaign venv
    import sentry_sdk
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    from sentry_sdk.transport import Transport

    class Drop(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            pass

    global _SENTRY_READY
    if not _SENTRY_READY:
        sentry_sdk.init(
            dsn="https://public@sentry.invalid/1",
            transport=Drop,
            traces_sample_rate=1.0,
            send_default_pii=True,
        )
        _SENTRY_READY = True
    return SentryAsgiMiddleware(app)


def secure_headers(app: App) -> App:
    """secure's ``SecureASGIMiddleware`` with ``Secure.with_default_headers()``."""
    # the package exists only in its campaign venv
    from secure import Secure
    from secure.middleware import SecureASGIMiddleware

    return SecureASGIMiddleware(app, secure=Secure.with_default_headers())


class _Timings:
    """A statsd-like client that keeps the last timing only."""

    last: tuple[str, float, Any] | None = None

    def timing(self, metric_name: str, timing: float, tags: Any = None) -> None:
        self.last = (metric_name, timing, tags)


def timing(app: App) -> App:
    """timing-asgi's ``TimingMiddleware`` with an in-memory client."""
    # the package exists only in its campaign venv
    from timing_asgi import TimingMiddleware

    return TimingMiddleware(app, client=_Timings())


def slowapi(app: App) -> App:
    """slowapi's ``SlowAPIASGIMiddleware`` with an in-memory ``Limiter``
    (1000/minute per client and path, rate-limit headers on).

    The middleware reads its limiter from ``scope["app"].state.limiter`` (the
    Starlette app it is added to, as its documentation does it) and applies the
    limits only to a request that one of that app's routes matches, so the factory
    sets ``scope["app"]`` to an app that has the limiter and a route for every
    path, as Starlette would."""
    # the packages exist only in their campaign venv
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def endpoint(request: Any) -> None:  # never called: the fuzzed app answers
        raise NotImplementedError

    owner = Starlette(routes=[Route("/{path:path}", endpoint)])
    owner.state.limiter = Limiter(
        key_func=get_remote_address,
        default_limits=["1000/minute"],
        headers_enabled=True,
        key_style="url",
    )
    limited = SlowAPIASGIMiddleware(app)

    async def added_to_an_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "app": owner}
        await limited(scope, receive, send)

    return added_to_an_app
