"""A case file's layer options, checked against what each layer kind takes."""

from __future__ import annotations

from asgifuzz.models._parts import LAYER_OPTIONS, JSONScalar
from asgifuzz.models._reader import Reader, shown


def layer_options(
    r: Reader, raw: object, path: str, kind: str
) -> dict[str, JSONScalar]:
    """A layer's options, checked against what its kind takes (`LAYER_OPTIONS`)."""
    takes = LAYER_OPTIONS.get(kind, {})
    where = f"{path}.options"
    if not isinstance(raw, dict):
        raise r.fail(where, f"is {shown(raw)}; must be an object")
    unknown = sorted(set(raw) - set(takes))
    if unknown:
        allowed = f"takes only {sorted(takes)}" if takes else "takes no options"
        raise r.fail(
            where,
            f"has unknown options [{', '.join(shown(k) for k in unknown[:5])}]; "
            f"{shown(kind)} {allowed}",
        )
    options: dict[str, JSONScalar] = {}
    for name, option in takes.items():
        if name not in raw:
            continue
        value = raw[name]
        if option.kind is int:
            ok = type(value) is int and option.lo <= value <= option.hi
            rule = f"an int in [{option.lo}, {option.hi}]"
        else:
            ok = (
                isinstance(value, str)
                and option.lo <= len(value) <= option.hi
                and all("!" <= c <= "~" for c in value)
                and _wildcard_ok(kind, value)
            )
            rule = (
                f"a string of {option.lo} to {option.hi} printable ASCII characters"
                + (", '*' or one leading '*.'" if kind.endswith("trusted_host") else "")
            )
        if not ok:
            raise r.fail(
                f"{where}.{name}",
                f"is {shown(value)}; must be {rule} (it sets {option.meaning})",
            )
        options[name] = value
    return options


def _wildcard_ok(kind: str, host: str) -> bool:
    # TrustedHostMiddleware asserts that '*' is the whole host or leads '*.'.
    if kind != "starlette.trusted_host" or "*" not in host:
        return True
    return host == "*" or (host.startswith("*.") and "*" not in host[1:])
