"""`sdboot doctor`: checks grouped by area (one module each), the engine that runs them,
and fixes as plans: each fix is a list of argv commands that run through the one runner,
after which every check runs again and the new state is what is reported."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.doctor import (
    checkout,
    environment,
    gpu,
    models,
    network,
    requirements,
    stack,
    store,
    system,
)
from sdboot.doctor.engine import Check, CheckResult, Summary, run_checks, summarize
from sdboot.doctor.facts import DoctorFacts
from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.runner import Runner, quote
from sdboot.values import Finding

CHECKS: list[Check] = [system.CHECK, gpu.CHECK, environment.CHECK, stack.CHECK,
                       requirements.CHECK, checkout.CHECK, network.CHECK, models.CHECK,
                       store.CHECK]
ALL_CODES = tuple(code for c in CHECKS for code in c.codes)
FIX_TIMEOUT_S = 3600.0


@dataclass
class DoctorReport:
    webui: Path | None
    python: Path | None
    results: list[CheckResult]
    summary: Summary
    fixes_run: list[dict[str, Any]] = field(default_factory=list)
    before: Summary | None = None  # with --fix: the state before the fixes

    def to_json(self, mask: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": "sdboot.doctor/1",
            "webui": str(self.webui) if self.webui else None,
            "python": str(self.python) if self.python else None,
            "checks": [r.to_json() for r in self.results],
            "summary": self.summary.to_json(),
        }
        if self.before is not None:
            doc["fixes"] = self.fixes_run
            doc["before"] = self.before.to_json()
        masked: dict[str, Any] = _mask(doc, mask)
        return masked


def _mask(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_mask(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: _mask(v, mask) for k, v in value.items()}
    return value


def path_masker(home: Path, user: str | None) -> Callable[[str], str]:
    """For support reports: the home folder becomes ~ and the user name <user>."""
    home_text = str(home)

    def mask(text: str) -> str:
        text = text.replace(home_text, "~")
        if user and len(user) > 2:
            text = re.sub(rf"(?<![\w.-]){re.escape(user)}(?![\w.-])", "<user>", text)
        return text

    return mask


def parse_only(text: str | None) -> set[str] | None:
    if not text:
        return None
    codes = {c.strip() for c in text.split(",") if c.strip()}
    unknown = sorted(codes - set(ALL_CODES))
    if unknown:
        raise SdbootError(t("unknown finding code '{code}'", code=unknown[0]),
                          t("codes: {codes}", codes=", ".join(ALL_CODES)))
    return codes


def find_webui(webui_dir: Path | None) -> Path | None:
    """WEBUI_DIR, else the current folder when it holds a WebUI."""
    from sdboot.webui.folder import is_webui

    if webui_dir is not None:
        path = webui_dir.expanduser().resolve()
        if not path.is_dir():  # bad input, like every other command (a folder that is not a
            # WebUI is a finding instead: webui-missing)
            message = t("{dir} is not a folder", dir=webui_dir) if path.exists() \
                else t("{dir} does not exist", dir=webui_dir)
            raise SdbootError(message,
                              t("give the WebUI folder (the one with launch.py), or create "
                                "one: sdboot install {dir}", dir=webui_dir), exit_code=2)
        return path
    return Path.cwd() if is_webui(Path.cwd()) else None


def diagnose(facts: DoctorFacts, only: set[str] | None = None) -> DoctorReport:
    results = run_checks(CHECKS, facts, only)
    python, _ = facts.python
    return DoctorReport(facts.webui_dir, python, results, summarize(results))


def automatic_fixes(results: list[CheckResult]) -> list[tuple[Finding, tuple[tuple[str, ...],
                                                                             ...]]]:
    """Each distinct automatic fix once (several findings can share one reinstall)."""
    seen: set[tuple[tuple[str, ...], ...]] = set()
    out = []
    for res in results:
        for f in res.findings:
            if f.fix and f.fix.automatic and f.fix.commands and f.fix.commands not in seen:
                seen.add(f.fix.commands)
                out.append((f, f.fix.commands))
    return out


def apply_fixes(plan: list[tuple[Finding, tuple[tuple[str, ...], ...]]], runner: Runner,
                on_line: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    done = []
    for finding, commands in plan:
        for argv in commands:
            res = runner.stream(list(argv), timeout=FIX_TIMEOUT_S, on_line=on_line)
            done.append({"code": finding.code, "command": list(argv), "exit": res.returncode,
                         "ok": res.ok, "tail": res.tail(3) if not res.ok else ""})
            if not res.ok:
                break
    return done


def fresh_facts(old: DoctorFacts) -> DoctorFacts:
    return DoctorFacts(old.webui_dir, old.python_arg, old.profile_arg, old.offline, old.runner)


def describe(commands: tuple[tuple[str, ...], ...]) -> str:
    return " && ".join(quote(list(c)) for c in commands)
