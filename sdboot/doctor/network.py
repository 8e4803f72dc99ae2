"""network: can the upstreams be reached, and do the configured mirrors answer? All
probes at once under one deadline; skipped with --offline."""

from __future__ import annotations

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.model import Finding, Fix, Severity

DEADLINE_S = 5.0
NAMES = {"github": "GitHub", "pypi": "the package index", "torch": "the PyTorch wheel index",
         "hf": "Hugging Face"}


def _configured(facts: DoctorFacts) -> dict[str, str]:
    """group -> mirror name in use for this WebUI (env block, install record, rewrite)."""
    from sdboot.mirror_apply import read_state, webui_selection

    if not facts.is_webui or facts.webui_dir is None:
        return {}
    chosen = webui_selection(facts.webui_dir, facts.mirrors).chosen()
    rewrite = read_state(facts.webui_dir).get("rewrite") or {}
    if rewrite.get("mirror"):
        chosen["github"] = rewrite["mirror"]
    return {g: n for g, n in chosen.items() if g in NAMES}


def run(facts: DoctorFacts) -> Outcome:
    from sdboot.health import UPSTREAM, plan_candidates, run_health

    configured = _configured(facts)
    cands = [c for c in plan_candidates(facts.mirrors, tuple(NAMES))
             if (c.name == UPSTREAM and c.group not in configured)
             or configured.get(c.group) == c.name]
    results = run_health(cands, DEADLINE_S, facts.runner)
    findings = []
    for health in results:
        cand = health.candidate
        if health.alive:
            continue
        if cand.name == UPSTREAM:
            findings.append(Finding(
                "network-unreachable", Severity.WARNING,
                f"{NAMES[cand.group]} cannot be reached ({health.error})",
                Fix("use a mirror: sdboot mirror test, then sdboot mirror apply DIR "
                    "--mirror auto (in mainland China: --mirror cn)")))
        else:
            findings.append(Finding(
                "mirror-dead", Severity.WARNING,
                f"the {cand.group} mirror {cand.name} ({cand.url}) does not answer "
                f"({health.error})",
                Fix("pick a live one: sdboot mirror test, then sdboot mirror apply DIR "
                    "--mirror auto")))
    alive = sum(h.alive for h in results)
    return Outcome(f"{alive} of {len(results)} reachable", tuple(findings))


CHECK = Check("network", "network and mirrors", run, ("network-unreachable", "mirror-dead"),
              network=True)
