"""The doctor's engine: checks return findings, the engine times them, turns a check that
raises into a `crash` result (never a crashed doctor), runs the network checks at the same
time as the local ones, and derives each result's status from its findings."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdboot.i18n import t
from sdboot.values import Finding, Severity, StrEnum

if TYPE_CHECKING:
    from sdboot.doctor.facts import DoctorFacts


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    CRASH = "crash"


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: a one-line summary and its findings (or a skip)."""

    summary: str
    findings: tuple[Finding, ...] = ()
    skipped: bool = False


CheckFn = Callable[["DoctorFacts"], Outcome]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: CheckFn
    codes: tuple[str, ...]  # the finding codes it can report (for --only)
    network: bool = False


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    summary: str
    findings: tuple[Finding, ...] = ()
    elapsed_ms: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "title": self.title, "status": str(self.status),
                               "summary": self.summary, "elapsed_ms": round(self.elapsed_ms),
                               "findings": [f.to_json() for f in self.findings]}
        if self.error:
            doc["error"] = self.error
        return doc


def status_of(outcome: Outcome) -> Status:
    if outcome.skipped:
        return Status.SKIP
    severities = {f.severity for f in outcome.findings}
    if Severity.ERROR in severities:
        return Status.FAIL
    if Severity.WARNING in severities:
        return Status.WARN
    return Status.PASS


def run_one(check: Check, facts: DoctorFacts, only: set[str] | None) -> CheckResult:
    started = time.monotonic()
    try:
        outcome = check.run(facts)
    except Exception as exc:  # noqa: BLE001 - a broken check is reported, not fatal
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        return CheckResult(check.id, t(check.title), Status.CRASH,
                           t("the check itself failed: {error}: {detail}",
                             error=type(exc).__name__, detail=exc), (),
                           (time.monotonic() - started) * 1000, f"{exc!r}{where}")
    if only is not None:
        outcome = Outcome(outcome.summary, tuple(f for f in outcome.findings
                                                 if f.code in only), outcome.skipped)
    return CheckResult(check.id, t(check.title), status_of(outcome), outcome.summary,
                       outcome.findings, (time.monotonic() - started) * 1000)


def run_checks(checks: list[Check], facts: DoctorFacts,
               only: set[str] | None = None) -> list[CheckResult]:
    """Local checks in order; network checks in threads started first, so their deadline
    runs while the local checks work. Results keep the order of `checks`."""
    wanted = [c for c in checks if only is None or set(c.codes) & only]
    results: dict[str, CheckResult] = {}
    threads = []
    for check in wanted:
        if check.network and not facts.offline:
            def work(c: Check = check) -> None:
                results[c.id] = run_one(c, facts, only)

            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            threads.append(thread)
    for check in wanted:
        if check.network and facts.offline:
            results[check.id] = CheckResult(check.id, t(check.title), Status.SKIP,
                                            t("skipped (--offline)"))
        elif not check.network:
            results[check.id] = run_one(check, facts, only)
    for thread in threads:
        thread.join()
    return [results[c.id] for c in wanted]


@dataclass
class Summary:
    errors: int = 0
    warnings: int = 0
    fixable: int = 0
    crashed: int = 0
    codes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, int]:
        return {"errors": self.errors, "warnings": self.warnings, "fixable": self.fixable}


def summarize(results: list[CheckResult]) -> Summary:
    out = Summary()
    for res in results:
        out.crashed += res.status == Status.CRASH
        for f in res.findings:
            out.codes.append(f.code)
            out.errors += f.severity == Severity.ERROR
            out.warnings += f.severity == Severity.WARNING
            out.fixable += bool(f.fix and f.fix.automatic and f.fix.commands)
    return out
