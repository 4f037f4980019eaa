"""Invariant I1: a valid response or a clean end."""

from __future__ import annotations

from asgifuzz._driver.outcome import describe
from asgifuzz._oracles.exceptions import is_disconnect_error, is_group, members
from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation


def valid_response(f: Facts) -> list[Violation]:
    """I1: no exception the app did not raise; no 500 from nowhere; no
    response left incomplete while the client is connected."""
    out: list[Violation] = []
    r, exc = f.response, f.escaped
    if exc is not None and id(exc) not in f.raised_ids and not _excused(f, exc):
        out.append(
            Violation(
                "I1",
                f"the app raised {describe(exc)}, which no endpoint or layer "
                f"raised (top frame: {_top(f)})",
                type(exc).__name__,
                f.app_frames(),
            )
        )
    if r.status == 500 and not f.raised and not f.app_mode and not out:
        # (Not when the exception behind the 500 is already the finding.)
        cause = "after the client disconnected" if f.disconnected else ""
        behind, depth = _behind(f)
        if behind is not None and exc is not None and not _excused(f, behind):
            # The root cause, under its own key and frame: the same finding as
            # when the client stays and it escapes itself (I1:<type>@frame).
            frames = f.outcome.context_app_frames(depth)
            out.append(
                Violation(
                    "I1",
                    f"the app raised {describe(behind)}, which no endpoint or layer "
                    f"raised (at {frames[-1] if frames else 'an unknown frame'}); "
                    f"the server got a 500 {cause} answering it, and it came out "
                    f"as the context of {describe(exc)}".replace("  ", " "),
                    type(behind).__name__,
                    frames,
                )
            )
        else:
            out.append(
                Violation(
                    "I1",
                    f"the server got a 500 {cause} though no endpoint or layer "
                    "raised anything".replace("  ", " "),
                    "500",
                )
            )
    if f.outcome.returned and not r.complete and not f.cut_short and exc is None:
        out.append(
            Violation(
                "I1",
                "the app returned without completing the response "
                f"(started={r.started}, {r.body_messages} body messages) while the "
                "client was still connected",
                "incomplete",
            )
        )
    return out


def _behind(f: Facts) -> tuple[BaseException | None, int]:
    """The exception behind a 500 that no model raised, and its depth in the
    escaped exception's context chain: one the app's own code (a user layer)
    raised, answered by ServerErrorMiddleware, whose send of the 500 then
    failed (the client had gone), so what escaped is that failure, with the
    exception as its ``__context__``."""
    exc = f.escaped.__context__ if f.escaped is not None else None
    depth = 1
    while exc is not None:  # (raising never makes a context chain a cycle)
        if id(exc) not in f.raised_ids and not is_disconnect_error(exc):
            return exc, depth
        exc, depth = exc.__context__, depth + 1
    return None, 0


def _excused(f: Facts, exc: BaseException) -> bool:
    """Whether an exception no model raised is still no I1 finding."""
    if id(exc) in f.model_ids:
        return True  # I6 says how the app's own exception was changed.
    if is_group(exc) and all(
        id(e) in f.model_ids or is_disconnect_error(e)
        for e in members(exc)[1:]
        if not is_group(e)
    ):
        return True  # I6 again: the app's exceptions, wrapped.
    if is_disconnect_error(exc) and f.disconnected is not None:
        return True  # the clean end of a request whose client has gone
    if f.app_mode and not f.framework_raised():
        return True  # policy: the user app's own error; the server answers 500
    # policy: raising is how a user's layer aborts a started response
    return _user_abort(f, exc)


def _user_abort(f: Facts, exc: BaseException) -> bool:
    """A user's layer raised to abort a response the server had started."""
    if not f.user_layers:
        return False
    raised = f.first_raise.get(type(exc).__name__)  # as the taps name it
    start = next(
        (e.tick for e in f.sends(0) if (e.message or {}).get("type") == _START),
        None,
    )
    return (
        raised is not None
        and start is not None
        and start < raised
        and not f.framework_raised()
    )


_START = "http.response.start"


def _top(f: Facts) -> str:
    frames = f.outcome.escaped_frames
    if not frames:
        return "unknown"
    filename, lineno, name = frames[-1]
    return f"{filename}:{lineno} in {name}"
