"""environment: the WebUI folder, its Python environment (missing, or there but unable to
start its interpreter), the interpreter's version, pip."""

from __future__ import annotations

from pathlib import Path

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.values import Finding, Fix, Severity

# The WebUI (A1111 v1.x, Forge) is tested on 3.10; its pinned packages (e.g. torch 2.1.2,
# the tokenizers and scikit-image pins) have no wheels for 3.12+.
TESTED = "3.10"
NO_WHEELS_FROM = (3, 12)
LOST = N_("lost: packages sdboot did not put there (the WebUI installs its requirements "
          "again on its next start, extensions theirs)")


def recreate_fix(facts: DoctorFacts, prefix: Path) -> Fix:
    """A new venv at the same place from a working Python 3.10 (the recorded base Python
    when it still runs), then the expected stack with its dependencies."""
    from sdboot.machine.envs import env_python
    from sdboot.machine.envs.venv import find_python
    from sdboot.stack.broken_env import interpreter_fails
    from sdboot.stack.verdict import stack_install_fix

    webui = str(facts.webui_dir) if facts.webui_dir is not None else "WEBUI_DIR"
    lost = t(LOST)
    if (prefix / "conda-meta").is_dir():
        return Fix(t("recreate the conda env: conda env remove -p {prefix}, then sdboot "
                     "install {webui} --env conda; {lost}", prefix=prefix, webui=webui,
                     lost=lost))
    if not (prefix / "pyvenv.cfg").is_file():  # not provably a venv: never cleared for you
        return Fix(t("move {prefix} away, then sdboot install {webui}; {lost}", prefix=prefix,
                     webui=webui, lost=lost))
    base: Path | None = None
    recorded = (facts.record.get("env") or {}).get("base_python")
    if recorded and Path(recorded).exists() and not interpreter_fails(Path(recorded),
                                                                       facts.runner):
        base = Path(recorded)
    if base is None:
        try:
            base = find_python(TESTED, facts.runner)
        except SdbootError as exc:
            return Fix(t("install Python {version} ({hint}), then run sdboot doctor --fix "
                         "again; {lost}", version=TESTED, hint=exc.hint, lost=lost))
    expected, _ = facts.expected
    commands: list[tuple[str, ...]] = [(str(base), "-m", "venv", "--clear", str(prefix))]
    stack = stack_install_fix(expected, str(env_python(prefix)), facts.constraints)
    if stack is not None:
        commands += stack.commands
    summary = t("recreate {prefix} with {base} and the {profile} stack; {lost}",
                prefix=prefix, base=base, profile=expected.name, lost=lost) \
        if expected is not None else \
        t("recreate {prefix} with {base}; {lost}", prefix=prefix, base=base, lost=lost)
    return Fix(summary, tuple(commands), automatic=True)


def _broken(facts: DoctorFacts) -> Finding | None:
    from sdboot.stack.broken_env import env_broken_finding

    broken = facts.broken_env
    if broken is None:
        return None
    prefix, reason = broken
    return env_broken_finding(prefix, reason, recreate_fix(facts, prefix))



def run(facts: DoctorFacts) -> Outcome:
    findings: list[Finding] = []
    if facts.webui_dir is not None and not facts.is_webui:
        findings.append(Finding("webui-missing", Severity.ERROR,
                                t("{dir} is not a Stable Diffusion WebUI checkout (no "
                                  "launch.py and modules/)", dir=facts.webui_dir),
                                Fix(t("give the WebUI folder, or create one: sdboot install "
                                      "{dir}", dir=facts.webui_dir))))
    python, how = facts.python
    broken = _broken(facts) if python is None or "error" in (facts.probe or {}) else None
    if broken is not None:
        findings.append(broken)
        return Outcome(t("the environment {prefix} exists but its Python cannot start "
                         "(broken)", prefix=broken_prefix(facts)), tuple(findings))
    if python is None:
        findings.append(Finding("env-missing", Severity.ERROR,
                                t("no Python environment found for the WebUI: {how}",
                                  how=how),
                                Fix(t("create it: sdboot install (or give --python PATH)"))))
        return Outcome(t("no environment"), tuple(findings))
    probe = facts.probe or {}
    if "error" in probe:
        findings.append(Finding("env-missing", Severity.ERROR,
                                t("the environment's Python does not run: {error}",
                                  error=probe["error"]),
                                Fix(t("recreate it: delete the folder and run sdboot "
                                      "install"))))
        return Outcome(t("{prefix} (broken)", prefix=python), tuple(findings))
    version = str(probe.get("python", "?"))
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if major_minor and ".".join(map(str, major_minor)) != TESTED:
        cannot = major_minor >= NO_WHEELS_FROM
        findings.append(Finding(
            "python-version", Severity.ERROR if cannot else Severity.WARNING,
            t("Python {version}: the WebUI is tested on {tested}; its pinned packages have "
              "no wheels for this Python", version=version, tested=TESTED) if cannot
            else t("Python {version}: the WebUI is tested on {tested}", version=version,
                   tested=TESTED),
            Fix(t("recreate the environment with Python 3.10: sdboot install (it finds or "
                  "names a 3.10)"))))
    if not probe.get("pip"):
        findings.append(Finding("pip-missing", Severity.ERROR,
                                t("the environment's Python has no pip: the WebUI cannot "
                                  "install its requirements"),
                                Fix(t("bootstrap pip"),
                                    ((str(python), "-m", "ensurepip", "--upgrade"),),
                                    automatic=True)))
    return Outcome(t("Python {version} at {python} ({how})", version=version, python=python,
                     how=how), tuple(findings))


def broken_prefix(facts: DoctorFacts) -> str:
    broken = facts.broken_env
    return str(broken[0]) if broken is not None else "?"


CHECK = Check("environment", N_("Python environment"), run,
              ("webui-missing", "env-missing", "env-broken", "python-version", "pip-missing"))
