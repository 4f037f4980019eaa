"""Reports of a fuzz run: JUnit XML for CI systems, Markdown with tables, a PNG plot.

Every file is written whole or not at all: into a temporary file beside its
place, then renamed over it (`write_bytes_atomically`), so a run stopped by
Ctrl-C or a crash never leaves half a report for a CI system to choke on.

Each finding is labelled with its status (``new`` or ``known-upstream`` with
its link) and, in a case with the user's code, its owner (``yours`` or
``upstream (Starlette)``). In JUnit a finding that does not fail the run (a
known upstream bug under ``--fail-on new``, Starlette's under ``--fail-on
user``) is a skipped testcase that says so, so that a CI system and the exit
status agree.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from asgifuzz._campaign.findings import failing
from asgifuzz._campaign.plot import NO_MATPLOTLIB, plot_png
from asgifuzz._markdown import table
from asgifuzz._oracles.failures import short_signature
from asgifuzz.models import case_to_data

if TYPE_CHECKING:
    from asgifuzz._campaign.loop import Finding, FuzzReport
    from asgifuzz._campaign.progress import Sample


@dataclass
class RunInfo:
    """A finished fuzz run and what is needed to describe it."""

    report: FuzzReport
    settings: dict[str, str]
    versions: dict[str, str]
    samples: list[Sample] = field(default_factory=list)
    #: Corpus entries written for findings, by `Finding.ident`.
    saved: dict[str, Path] = field(default_factory=dict)
    #: ``--fail-on``: which findings fail the run (`failing`).
    fail_on: str = "any"

    def per_backend(self) -> dict[str, tuple[int, float]]:
        """Generated cases run on each backend, and their rate per second of
        generation."""
        r = self.report
        spent = r.generation_s or r.elapsed
        found = {}
        for backend in r.backends:
            n = sum(v for k, v in r.outcomes.items() if k.startswith(f"{backend}:"))
            found[backend] = (n, n / spent if spent else 0.0)
        return found

    def headline(self) -> str:
        r = self.report
        line = (
            f"{r.runs()} in {r.elapsed:.1f}s ({r.cases_per_second:.1f} generated "
            f"cases/s over {r.generation_s:.1f}s of generation) on "
            f"{'+'.join(r.backends)}, {len(r.findings)} distinct failure(s)"
        )
        if r.findings:
            line += f" ({counts(r)})"
        return line + (", interrupted (Ctrl-C)" if r.interrupted else "")


def counts(report: FuzzReport) -> str:
    """``2 new, 1 known upstream``, and with the user's code, ``; 1 yours, 2
    upstream (Starlette)``."""
    statuses = report.statuses()
    text = f"{statuses['new']} new, {statuses['known-upstream']} known upstream"
    if any(f.attributed for f in report.findings):
        owners = report.owners()
        text += f"; {owners['user']} yours, {owners['upstream-starlette']} upstream"
        text += " (Starlette)"
    return text


def title(finding: Finding) -> str:
    """``I1:IndexError on asyncio and trio, new``: the finding in one line (with
    the user's code: ``..., yours, new`` or ``..., upstream (Starlette), new``)."""
    owner = f"{finding.describe_owner()}, " if finding.attributed else ""
    return f"{finding.key} on {finding.seen_on}, {owner}{finding.describe_status()}"


def repro_command(path: Path | str, finding: Finding) -> str:
    """The command that writes and runs the Starlette-only reproducer of
    ``finding`` saved at ``path`` (for Starlette's failure in a case with the
    user's layers: its swapped case), on the backend that showed it."""
    backend = " trio" if finding.backend == "trio" else ""
    return f"asgifuzz repro {path} > repro.py && python repro.py{backend}"


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _slug(key: str) -> str:
    return re.sub(r"[^\w]+", "-", key).strip("-").lower()


def _case_json(finding: Finding) -> str:
    return json.dumps(case_to_data(finding.case), sort_keys=True)


def replay_command(path: Path | str, finding: Finding) -> str:
    """The command that replays ``finding`` saved at ``path``."""
    backend = finding.backend if finding.backend in ("asyncio", "trio") else "both"
    return f"asgifuzz replay {path} --backend {backend} --trace"


# JUnit XML


def junit_xml(info: RunInfo) -> bytes:
    """One testcase per distinct failure (failing, or skipped when it does not
    fail the run), one for the run itself (passing, or an error when a target
    of the user's was misconfigured)."""
    import xml.etree.ElementTree as ET

    r = info.report
    fails = [f for f in r.findings if failing(f, info.fail_on)]
    suite = ET.Element(
        "testsuite",
        name="asgifuzz.fuzz",
        tests=str(len(r.findings) + 1),
        failures=str(len(fails)),
        errors=str(int(bool(r.misconfigured))),
        skipped=str(len(r.findings) - len(fails)),
        time=f"{r.elapsed:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    counts = {
        "generated_cases": r.cases,
        "point_runs": r.point_runs,
        "shrink_runs": r.shrink_runs,
        "replay_runs": r.replay_runs,
        "generation_s": f"{r.generation_s:.3f}",
    }
    for name, value in {**info.settings, **info.versions, **counts}.items():
        ET.SubElement(props, "property", name=name, value=str(value))
    run = ET.SubElement(
        suite,
        "testcase",
        classname="asgifuzz.fuzz",
        name="campaign",
        time=f"{r.elapsed:.3f}",
    )
    if r.misconfigured:
        error = ET.SubElement(
            run, "error", message=f"misconfigured: {r.misconfigured[0].spec}"
        )
        error.text = "\n\n".join(m.describe() for m in r.misconfigured)
    out = ET.SubElement(run, "system-out")
    out.text = (
        info.headline()
        + "\n"
        + "\n".join(f"{k}: {v}" for k, v in sorted(r.outcomes.items()))
    )
    for finding in r.findings:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"asgifuzz.fuzz.{finding.backend}",
            name=short_signature(finding.signature)
            + (" (upstream)" if finding.swapped is not None else ""),
            time=f"{finding.first_seen_s:.3f}",
        )
        labels = ET.SubElement(case, "properties")
        for name, value in _labels(finding).items():
            ET.SubElement(labels, "property", name=name, value=value)
        message = finding.messages[0] if finding.messages else finding.key
        if finding.status != "new":
            message = f"{finding.describe_status()}: {message}"
        if finding.attributed and finding.owner != "user":
            message = f"{finding.describe_owner()}: {message}"
        lines = [
            title(finding),
            f"keys: {', '.join(finding.keys)}",
            *finding.describe_also(),
            *finding.messages,
            "",
            f"shrunk case: {_case_json(finding)}",
        ]
        if finding.swapped is not None:
            swapped = json.dumps(case_to_data(finding.swapped), sort_keys=True)
            lines.append(
                f"swapped case (Starlette-only, fails the same way): {swapped}"
            )
        where = info.saved.get(finding.ident)
        if where is not None:
            lines.append(replay_command(where, finding))
            if finding.owner != "user":
                lines.append(repro_command(where, finding))
        if failing(finding, info.fail_on):
            failure = ET.SubElement(
                case, "failure", type=finding.key, message=message[:500]
            )
            failure.text = "\n".join(lines)
        else:
            ET.SubElement(case, "skipped", message=message[:500])
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suite)
    text: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def _labels(finding: Finding) -> dict[str, str]:
    """A finding's labels, as JUnit testcase properties."""
    labels = {
        "status": finding.status,
        "owner": finding.owner,
        "signature": finding.signature,
        "keys": " ".join(finding.keys),
        "seen_on": finding.seen_on,
    }
    if finding.upstream:
        labels["upstream"] = finding.upstream
    if finding.entry:
        labels["entry"] = finding.entry
        labels["matched"] = finding.matched
    return labels


def write_junit(path: Path, info: RunInfo) -> None:
    """``--junit PATH``."""
    write_bytes_atomically(path, junit_xml(info))


# Markdown


def markdown(
    info: RunInfo, *, plot: str | None, no_plot: str = "", home: Path | None = None
) -> str:
    """The report; ``plot`` is the PNG's file name, or None with ``no_plot`` saying why.

    Links to saved cases are relative to ``home`` (the report's folder).
    """
    r = info.report
    lines = ["# asgifuzz fuzz report", "", info.headline() + ".", ""]
    for m in r.misconfigured:  # why the run stopped early
        lines += ["## Misconfigured: the run stopped early", "", "```"]
        lines += [m.describe(), "```", ""]
    lines += ["## Run settings", ""]
    lines += table(["setting", "value"], [[k, v] for k, v in info.settings.items()])
    lines += ["", "## Versions", ""]
    lines += table(["package", "version"], [[k, v] for k, v in info.versions.items()])
    lines += ["", "## Throughput", ""]
    rows: list[list[object]] = [
        [b, n, f"{rate:.1f}"] for b, (n, rate) in info.per_backend().items()
    ]
    rows.append(
        ["all (each case on every backend)", r.cases, f"{r.cases_per_second:.1f}"]
    )
    lines += table(["backend", "generated cases", "per second of generation"], rows)
    lines += [
        "",
        f"Besides them: {r.point_runs} runs at disconnect points (within the "
        f"generation's {r.generation_s:.1f}s), {r.shrink_runs} runs shrinking "
        f"failures, {r.replay_runs} replays of saved cases.",
    ]
    lines += ["", "## Outcomes", ""]
    kinds = sorted({k.partition(":")[2] for k in r.outcomes})
    lines += table(
        ["outcome", *r.backends],
        [[k, *(r.outcomes.get(f"{b}:{k}", 0) for b in r.backends)] for k in kinds],
    )
    lines += ["", "## Over time", ""]
    if plot is not None:
        lines.append(f"![cases/s and distinct failures over time]({plot})")
    else:
        lines.append(f"No plot could be made: {no_plot}.")
    lines += ["", "## Findings", ""]
    if not r.findings:
        lines.append("No failures found.")
    rows = []
    for n, f in enumerate(r.findings, 1):
        where = info.saved.get(f.ident)
        rows.append(
            [
                n,
                f"`{f.key}`" + (" (flaky)" if f.flaky else ""),
                f.seen_on,
                f"{f.first_seen_s:.1f}s / {f.first_seen_cases} cases",
                f"[{where.name}]({os.path.relpath(where, home or '.')})"
                if where
                else "below",
                f"`{replay_command(where, f)}`" if where else "-",
                _status_cell(f),
            ]
        )
    if rows:
        lines += table(
            ["#", "key", "seen on", "first seen", "case", "replay", "status"], rows
        )
    for n, f in enumerate(r.findings, 1):
        lines += ["", f"### {n}. {title(f)}", ""]
        lines += [
            f"Keys: {', '.join(f'`{k}`' for k in f.keys)}; signature `{f.signature}`.",
            "",
        ]
        lines += [f"- {m}" for m in [*f.describe_also(), *f.messages]]
        lines += ["", "```json", _case_json(f), "```"]
        if f.swapped is not None:
            lines += ["", "Swapped case (Starlette-only, fails the same way):", ""]
            swapped = json.dumps(case_to_data(f.swapped), sort_keys=True)
            lines += ["```json", swapped, "```"]
    return "\n".join(lines) + "\n"


def beside_report(path: Path, n: int, finding: Finding) -> Path:
    """Where ``--report PATH`` saves the ``n``-th finding when no corpus has it."""
    return path.parent / f"{path.stem}-findings" / f"{n}-{_slug(finding.key)}.json"


def _status_cell(finding: Finding) -> str:
    owner = f"{finding.describe_owner()}, " if finding.attributed else ""
    return owner + _status(finding)


def _status(finding: Finding) -> str:
    if finding.status == "new":
        return f"new (`{finding.entry}`)" if finding.entry else "new"
    link = f"[upstream]({finding.upstream})" if finding.upstream else finding.entry
    return f"known upstream: {link}"


def write_markdown(path: Path, info: RunInfo) -> Path | None:
    """``--report PATH``: the Markdown, and the PNG beside it when one can be made.

    Returns the PNG's path, or None (the report says why there is no plot).
    """
    png: Path | None = path.with_suffix(".png")
    reason = ""
    try:
        data = plot_png(info.samples)
    except ImportError:
        png, reason = None, NO_MATPLOTLIB
    except ValueError as exc:
        png, reason = None, str(exc)
    else:
        assert png is not None
        write_bytes_atomically(png, data)
    saved = dict(info.saved)
    for n, f in enumerate(info.report.findings, 1):
        if f.ident not in saved:  # not in a corpus: save it beside the report
            where = beside_report(path, n, f)
            finding = json.dumps(f.to_data(), indent=2, sort_keys=True) + "\n"
            write_bytes_atomically(where, finding.encode())
            saved[f.ident] = where
    text = markdown(
        replace(info, saved=saved),
        plot=None if png is None else png.name,
        no_plot=reason,
        home=path.parent,
    )
    write_bytes_atomically(path, text.encode())
    return png
