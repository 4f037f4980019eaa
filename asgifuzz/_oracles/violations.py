"""Violations: which invariant broke, the evidence, and a key to tell bugs apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with the evidence in ``message``.

    ``tag`` is a short, stable name for the kind of failure within the
    invariant (an exception type, a warning's object, a reader), so that two
    different bugs breaking the same invariant are reported apart. The
    invariant's title is in `asgifuzz._oracles.registry.INVARIANTS`.
    """

    invariant: str
    message: str
    tag: str = ""
    #: The innermost frames in the app under test (``pkg/module.py:function``)
    #: where an exception started, for the crash-state part of the signature.
    frames: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``invariant:tag``, the failure's identity for deduplication."""
        return f"{self.invariant}:{self.tag}" if self.tag else self.invariant

    @property
    def signature(self) -> str:
        """The key plus, where an exception was involved, its top frames in the
        app (in the spirit of ClusterFuzz's crash state)."""
        return self.key + ("@" + ";".join(self.frames) if self.frames else "")
