"""What conformance reports: one claim of a profile that the real server does
not keep (HTTP claims: `conformance`; WebSocket claims: `ws_conformance`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mismatch:
    """One claim of a profile that the real server does not keep."""

    profile: str
    claim: str
    says: object
    does: object
    server: str

    def __str__(self) -> str:
        return (
            f"profile {self.profile!r}, claim {self.claim!r}: the profile says "
            f"{self.says!r}, {self.server} does {self.does!r}"
        )
