"""environment: the WebUI folder, its Python environment (missing, or there but unable to
start its interpreter), the interpreter's version, pip."""

from __future__ import annotations

from pathlib import Path

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.errors import SdbootError
from sdboot.values import Finding, Fix, Severity

# The WebUI (A1111 v1.x, Forge) is tested on 3.10; its pinned packages (e.g. torch 2.1.2,
# the tokenizers and scikit-image pins) have no wheels for 3.12+.
TESTED = "3.10"
NO_WHEELS_FROM = (3, 12)
LOST = ("lost: packages sdboot did not put there (the WebUI installs its requirements again "
        "on its next start, extensions theirs)")


def recreate_fix(facts: DoctorFacts, prefix: Path) -> Fix:
    """A new venv at the same place from a working Python 3.10 (the recorded base Python
    when it still runs), then the expected stack with its dependencies."""
    from sdboot.machine.envs import env_python
    from sdboot.machine.envs.venv import find_python
    from sdboot.stack.broken_env import interpreter_fails
    from sdboot.stack.verdict import stack_install_fix

    webui = str(facts.webui_dir) if facts.webui_dir is not None else "WEBUI_DIR"
    if (prefix / "conda-meta").is_dir():
        return Fix(f"recreate the conda env: conda env remove -p {prefix}, then sdboot "
                   f"install {webui} --env conda; {LOST}")
    if not (prefix / "pyvenv.cfg").is_file():  # not provably a venv: never cleared for you
        return Fix(f"move {prefix} away, then sdboot install {webui}; {LOST}")
    base: Path | None = None
    recorded = (facts.record.get("env") or {}).get("base_python")
    if recorded and Path(recorded).exists() and not interpreter_fails(Path(recorded),
                                                                       facts.runner):
        base = Path(recorded)
    if base is None:
        try:
            base = find_python(TESTED, facts.runner)
        except SdbootError as exc:
            return Fix(f"install Python {TESTED} ({exc.hint}), then run sdboot doctor --fix "
                       f"again; {LOST}")
    expected, _ = facts.expected
    commands: list[tuple[str, ...]] = [(str(base), "-m", "venv", "--clear", str(prefix))]
    stack = stack_install_fix(expected, str(env_python(prefix)), facts.constraints)
    if stack is not None:
        commands += stack.commands
    what = f" and the {expected.name} stack" if expected is not None else ""
    return Fix(f"recreate {prefix} with {base}{what}; {LOST}", tuple(commands),
               automatic=True)


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
                                f"{facts.webui_dir} is not a Stable Diffusion WebUI checkout "
                                "(no launch.py and modules/)",
                                Fix("give the WebUI folder, or create one: sdboot install "
                                    f"{facts.webui_dir}")))
    python, how = facts.python
    broken = _broken(facts) if python is None or "error" in (facts.probe or {}) else None
    if broken is not None:
        findings.append(broken)
        return Outcome(f"{broken.message.split(': ', 1)[0]} (broken)", tuple(findings))
    if python is None:
        findings.append(Finding("env-missing", Severity.ERROR,
                                f"no Python environment found for the WebUI: {how}",
                                Fix("create it: sdboot install (or give --python PATH)")))
        return Outcome("no environment", tuple(findings))
    probe = facts.probe or {}
    if "error" in probe:
        findings.append(Finding("env-missing", Severity.ERROR,
                                f"the environment's Python does not run: {probe['error']}",
                                Fix("recreate it: delete the folder and run sdboot install")))
        return Outcome(f"{python} (broken)", tuple(findings))
    version = str(probe.get("python", "?"))
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if major_minor and ".".join(map(str, major_minor)) != TESTED:
        cannot = major_minor >= NO_WHEELS_FROM
        findings.append(Finding(
            "python-version", Severity.ERROR if cannot else Severity.WARNING,
            f"Python {version}: the WebUI is tested on {TESTED}"
            + ("; its pinned packages have no wheels for this Python" if cannot else ""),
            Fix("recreate the environment with Python 3.10: sdboot install (it finds or "
                "names a 3.10)")))
    if not probe.get("pip"):
        findings.append(Finding("pip-missing", Severity.ERROR,
                                "the environment's Python has no pip: the WebUI cannot "
                                "install its requirements",
                                Fix("bootstrap pip",
                                    ((str(python), "-m", "ensurepip", "--upgrade"),),
                                    automatic=True)))
    return Outcome(f"Python {version} at {python} ({how})", tuple(findings))


CHECK = Check("environment", "Python environment", run,
              ("webui-missing", "env-missing", "env-broken", "python-version", "pip-missing"))
