"""network: can the upstreams be reached, and do the configured mirrors answer? All
probes at once under one deadline; skipped with --offline. Also: Hugging Face files the
WebUI's first start downloads that are not in the HF cache, with no way to fetch them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, t
from sdboot.values import Finding, Fix, Severity

if TYPE_CHECKING:
    from sdboot.mirrors.health import Health

DEADLINE_S = 5.0
NAMES = {"github": N_("GitHub"), "pypi": N_("the package index"),
         "torch": N_("the PyTorch wheel index"), "hf": N_("Hugging Face")}


def _configured(facts: DoctorFacts) -> dict[str, str]:
    """group -> mirror name in use for this WebUI (env block, install record, rewrite)."""
    from sdboot.mirrors.apply import read_state
    from sdboot.mirrors.status import webui_selection

    if not facts.is_webui or facts.webui_dir is None:
        return {}
    chosen = webui_selection(facts.webui_dir, facts.mirrors).chosen()
    rewrite = read_state(facts.webui_dir).get("rewrite") or {}
    if rewrite.get("mirror"):
        chosen["github"] = rewrite["mirror"]
    return {g: n for g, n in chosen.items() if g in NAMES}


# A1111 v1.x loads its text encoder's tokenizer with from_pretrained() at the first model
# load ("Can't load tokenizer for 'openai/clip-vit-large-patch14'", A1111#11507); SDXL's
# first encoder uses the same one. Forge ships these configs in backend/huggingface.
HF_NEEDED = ("openai/clip-vit-large-patch14",)


def hf_cache_dirs(user_vars: dict[str, str]) -> list[Path]:
    """Where huggingface_hub looks: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub."""
    def get(name: str) -> str | None:
        return os.environ.get(name) or user_vars.get(name)

    dirs = []
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if get(name):
            dirs.append(Path(str(get(name))).expanduser())
    home = get("HF_HOME")
    if home:
        dirs.append(Path(home).expanduser() / "hub")
    xdg = get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    return dirs


def missing_hf_files(facts: DoctorFacts, user_vars: dict[str, str]) -> list[str]:
    """The repositories the first start needs that no HF cache holds a snapshot of."""
    assert facts.webui_dir is not None
    if (facts.webui_dir / "backend" / "huggingface").is_dir():
        return []
    missing = []
    for repo in HF_NEEDED:
        folder = "models--" + repo.replace("/", "--")
        if not any(any((d / folder / "snapshots").glob("*/*")) for d in hf_cache_dirs(user_vars)
                   if (d / folder / "snapshots").is_dir()):
            missing.append(repo)
    return missing


def _hf_finding(facts: DoctorFacts, error: str | None,
                alive: list[Health] | None = None) -> Finding | None:
    """`alive`: the hf mirrors that answered in this run's probes, fastest first; the fix
    uses only one of those (a mirror that was not heard from is never written as fixed)."""
    from sdboot.mirrors.status import webui_selection
    from sdboot.webui.folder import read_user_vars

    if not facts.is_webui or facts.webui_dir is None:
        return None
    user_vars = read_user_vars(facts.webui_dir)
    if os.environ.get("HF_ENDPOINT") or user_vars.get("HF_ENDPOINT"):
        return None
    missing = missing_hf_files(facts, user_vars)
    if not missing:
        return None
    known = len(facts.mirrors.of_group("hf"))
    chosen = webui_selection(facts.webui_dir, facts.mirrors).chosen()
    args = [a for g in ("github", "pypi", "torch") if g in chosen for a in (f"--{g}", chosen[g])]
    best = alive[0].candidate if alive else None
    if best is not None:
        fix = Fix(t("send the WebUI's Hugging Face downloads through {name} "
                    "(HF_ENDPOINT={url} in webui-user; it answered just now)",
                    name=best.name, url=best.url),
                  ((*facts.sdboot_argv, "mirror", "apply", str(facts.webui_dir), "--mode",
                    "env", *args, "--hf", best.name),), automatic=True)
    else:
        fix = Fix(t("none of the known Hugging Face mirrors answered either: set "
                    "HF_ENDPOINT to a Hugging Face mirror that works from here in webui-user, "
                    "or copy the files into the HF cache") if known else
                  t("set HF_ENDPOINT to a Hugging Face mirror that works from here in "
                    "webui-user, or copy the files into the HF cache"))
    return Finding(
        "hf-unreachable", Severity.WARNING,
        t("Hugging Face does not answer ({error}) and no HF_ENDPOINT is set, but the WebUI's "
          "first model load downloads {repos} (not in the HF cache): it fails with \"Can't "
          "load tokenizer\"", error=error, repos=", ".join(missing)), fix)


def run(facts: DoctorFacts) -> Outcome:
    from sdboot.mirrors.health import UPSTREAM, plan_candidates, run_health

    configured = _configured(facts)
    planned = plan_candidates(facts.mirrors, tuple(NAMES))
    cands = [c for c in planned if (c.name == UPSTREAM and c.group not in configured)
             or configured.get(c.group) == c.name]
    # with no hf mirror in use, the hf mirrors are probed too (at once, same deadline), so
    # that the hf-unreachable fix names one that answers; they are not reported otherwise
    spares = [c for c in planned if c.group == "hf" and c.name != UPSTREAM
              and "hf" not in configured]
    every = run_health(cands + spares, DEADLINE_S, facts.runner)
    results, spare_health = every[:len(cands)], every[len(cands):]
    alive_hf = sorted((h for h in spare_health if h.alive),
                      key=lambda h: h.latency_ms if h.latency_ms is not None else 1e9)
    findings = []
    for health in results:
        cand = health.candidate
        if health.alive:
            continue
        if cand.name == UPSTREAM and cand.group == "hf":
            hf = _hf_finding(facts, health.error, alive_hf)
            if hf is not None:  # the specific finding says it all
                findings.append(hf)
                continue
        if cand.name == UPSTREAM:
            findings.append(Finding(
                "network-unreachable", Severity.WARNING,
                t("{what} cannot be reached ({error})", what=t(NAMES[cand.group]),
                  error=health.error),
                Fix(t("use a mirror: sdboot mirror test, then sdboot mirror apply DIR "
                      "--mirror auto (in mainland China: --mirror cn)"))))
        else:
            findings.append(Finding(
                "mirror-dead", Severity.WARNING,
                t("the {group} mirror {name} ({url}) does not answer ({error})",
                  group=cand.group, name=cand.name, url=cand.url, error=health.error),
                Fix(t("pick a live one: sdboot mirror test, then sdboot mirror apply DIR "
                      "--mirror auto"))))
    alive = sum(h.alive for h in results)
    return Outcome(t("{alive} of {total} reachable", alive=alive, total=len(results)),
                   tuple(findings))


CHECK = Check("network", N_("network and mirrors"), run,
              ("network-unreachable", "mirror-dead", "hf-unreachable"), network=True)
