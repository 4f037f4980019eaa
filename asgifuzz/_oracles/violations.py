"""Violations: which invariant broke, the evidence, and a signature to tell bugs apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with the evidence in ``message``.

    ``tag`` is a short, stable name for the kind of failure within the
    invariant (an exception type, a warning's object, a reader, the field that
    differs), so that two different bugs breaking the same invariant are
    reported apart. The invariant's title is in
    `asgifuzz._oracles.registry.INVARIANTS`.
    """

    invariant: str
    message: str
    tag: str = ""
    #: The innermost frames in the app under test (``pkg/module.py:qualname``,
    #: innermost last) where an exception started, for the signature.
    frames: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``invariant:tag``, the kind of failure."""
        return f"{self.invariant}:{self.tag}" if self.tag else self.invariant

    @property
    def signature(self) -> str:
        """The failure's identity: the key, plus, where an exception is involved,
        ``@`` and the innermost of `frames`, where the app's code raised it
        (``I1:IndexError@app/auth.py:Auth.dispatch``).

        Only the innermost frame (ClusterFuzz's crash state keeps three): the
        outer ones name the layers above, which change as Hypothesis shrinks
        the stack, and a signature that changed while shrinking would split one
        bug into several. Without an exception the key is the signature: the
        tag already names what differs (for I8, the field and which way).
        """
        return f"{self.key}@{self.frames[-1]}" if self.frames else self.key
