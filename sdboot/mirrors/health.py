"""Mirror health: probe every candidate (mirrors and upstreams) at once under ONE deadline,
so that a dead mirror costs the deadline once, not once per mirror; rank the answers by
latency; pick a mirror per group for `--mirror auto`, and cache the ranking for a while.

A probe is a real small request of the kind the mirror will serve: a GitHub mirror must
answer git's info/refs for a real repository (what `git clone` asks first), an index its
simple page, the Hugging Face endpoint a small file, a python mirror the checksum file of a
release asset. A 200 with the wrong body (a parked domain, a captive portal) counts as dead."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdboot.i18n import t
from sdboot.io.datafile import cache_dir
from sdboot.io.files import atomic_write
from sdboot.io.mask import mask_obj
from sdboot.io.runner import Runner
from sdboot.mirrors.loading import is_loopback
from sdboot.mirrors.table import GITHUB, GROUPS, Mirror, MirrorKind, MirrorTable, Selection

DEFAULT_DEADLINE_S = 6.0
CACHE_MAX_AGE_S = 1800.0
# An upstream is used by --mirror auto while it answers within this, or at most 3x slower
# than the best mirror.
UPSTREAM_OK_S = 2.0
UPSTREAM = "(upstream)"
_SHA256 = re.compile(rb"^[0-9a-fA-F]{64}(\s|$)")
# The python mirror's probe: a checksum file in release 20250115, the file ComfyUI Desktop
# checks a python mirror with (Comfy-Org/ComfyUI_frontend, src/constants/uvMirrors.ts).
# Mirrors that keep only the newest release (NJU's) fail it, as they fail every uv whose
# pinned release is older (https://github.com/XnneHangLab/yutto-uiya/issues/35).
PYTHON_FILE = "20250115/cpython-3.10.16%2B20250115-aarch64-apple-darwin-debug-full.tar.zst.sha256"
_GIT_REFS = re.compile(rb"^(?:[0-9a-f]{4}# service=git-upload-pack|[0-9a-f]{40}\t)")


@dataclass(frozen=True)
class Candidate:
    name: str  # a mirror name, or "(upstream)"
    group: str
    kind: str
    url: str  # what the user knows it by
    probe_url: str  # what is fetched; "pip" for the package index upstream
    expect: str  # git-refs | simple | links | any | json
    dead_since: str | None = None
    skip: str | None = None  # why it is not probed


@dataclass(frozen=True)
class Health:
    candidate: Candidate
    alive: bool
    latency_ms: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.candidate
        return {"name": c.name, "group": c.group, "kind": c.kind, "url": c.url,
                "alive": self.alive,
                "latency_ms": round(self.latency_ms, 1) if self.latency_ms is not None else None,
                "error": self.error, "dead_since": c.dead_since}


def _probe_for(mirror: Mirror, probes: dict[str, str], variant: str) -> tuple[str, str]:
    repo = probes.get("github_repo", "AUTOMATIC1111/stable-diffusion-webui")
    refs = f"{repo}.git/info/refs?service=git-upload-pack"
    if mirror.kind == MirrorKind.GITHUB_PREFIX:
        return mirror.url + GITHUB + refs, "git-refs"
    if mirror.kind in (MirrorKind.GITHUB_CLONE, MirrorKind.GITHUB_HOST):
        return mirror.url + refs, "git-refs"
    if mirror.kind == MirrorKind.PYPI:
        return mirror.url.rstrip("/") + f"/{probes.get('pypi_project', 'pip')}/", "simple"
    if mirror.kind == MirrorKind.TORCH_INDEX:
        return mirror.url_for(variant).rstrip("/") + "/torch/", "simple"
    if mirror.kind == MirrorKind.TORCH_FIND_LINKS:
        return mirror.url_for(variant), "links"
    if mirror.kind == MirrorKind.PYTHON:
        return python_probe_url(mirror.url, probes), "sha256"
    if mirror.kind == MirrorKind.HF:
        return mirror.url.rstrip("/") + "/" + probes.get(
            "hf_file", "openai/clip-vit-large-patch14/resolve/main/config.json"), "json"
    return mirror.url.rstrip("/") + "/noarch/repodata.json", "json"


def python_probe_url(base: str, probes: dict[str, str]) -> str:
    """A small file of one python-build-standalone release under a python mirror (or the
    GitHub release folder): the checksum of an archive, what uv fetches beside it."""
    return base.rstrip("/") + "/" + probes.get("python_file", PYTHON_FILE)


def plan_candidates(table: MirrorTable, groups: tuple[str, ...] = GROUPS,
                    variant: str | None = None, insecure: bool = False,
                    upstreams: bool = True) -> list[Candidate]:
    """Pure: what to probe. Mirrors known to be dead and plain-http mirrors (without
    --insecure) are listed but not contacted."""
    variant = variant or table.probes.get("torch_variant", "cu121")
    out: list[Candidate] = []
    for group in groups:
        if upstreams:
            up = _upstream(table, group, variant)
            if up is not None:
                out.append(up)
        for mirror in table.of_group(group):
            probe, expect = _probe_for(mirror, table.probes, variant)
            skip = None
            if mirror.dead_since:
                skip = t("known dead since {date}", date=mirror.dead_since)
            elif mirror.url.startswith("http://") and not insecure and not is_loopback(mirror.url):
                skip = t("plain http (use --insecure to test it)")
            out.append(Candidate(mirror.name, group, str(mirror.kind), mirror.url, probe,
                                 expect, mirror.dead_since, skip))
    return out


def _upstream(table: MirrorTable, group: str, variant: str) -> Candidate | None:
    ups = table.upstreams
    probes = table.probes
    if group == "github" and ups.get("github"):
        repo = probes.get("github_repo", "AUTOMATIC1111/stable-diffusion-webui")
        return Candidate(UPSTREAM, group, "upstream", ups["github"],
                         ups["github"] + f"{repo}.git/info/refs?service=git-upload-pack",
                         "git-refs")
    if group == "pypi":  # the index pip is configured for: asked through pip itself
        project = probes.get("pypi_project", "pip")
        return Candidate(UPSTREAM, group, "upstream", "pip's configured index",
                         f"pip:{project}", "pip")
    if group == "torch" and ups.get("torch"):
        url = ups["torch"].replace("{variant}", variant)
        return Candidate(UPSTREAM, group, "upstream", url, url.rstrip("/") + "/torch/",
                         "simple")
    if group == "python" and ups.get("python"):
        return Candidate(UPSTREAM, group, "upstream", ups["python"],
                         python_probe_url(ups["python"], probes), "sha256")
    if group == "hf" and ups.get("hf"):
        return Candidate(UPSTREAM, group, "upstream", ups["hf"], ups["hf"].rstrip("/") + "/"
                         + probes.get("hf_file", ""), "json")
    return None


def check_body(expect: str, status: int | None, body: bytes) -> str | None:
    """Pure: why an answer does not count (None: it does)."""
    if status is None:
        return t("no answer")
    if not 200 <= status < 300:
        return f"HTTP {status}"
    head = body[:4096].lstrip()
    if expect == "git-refs" and not _GIT_REFS.match(head):
        return t("answered, but not with git refs")
    if expect in ("simple", "links") and b"<a " not in body.lower() \
            and not head.startswith(b"{"):
        return t("answered, but not with an index page")
    if expect == "links" and b"torch" not in body.lower():
        return t("answered, but lists no torch wheels")
    if expect == "sha256" and not _SHA256.match(head):
        return t("answered, but not with a checksum")
    if expect == "json" and not head.startswith((b"{", b"[")):
        return t("answered, but not with the expected file")
    return None


def _probe_one(cand: Candidate, deadline_s: float, runner: Runner) -> Health:
    started = time.monotonic()
    if cand.probe_url.startswith("pip:"):
        timeout = max(1, int(deadline_s))
        res = runner.run([sys.executable, "-m", "pip", "index", "versions",
                          "--retries", "0", "--timeout", str(timeout),
                          "--disable-pip-version-check", "--", cand.probe_url[4:]],
                         timeout=deadline_s)
        elapsed = (time.monotonic() - started) * 1000
        if res.ok:
            return Health(cand, True, elapsed)
        return Health(cand, False, None, t("pip cannot reach it") if not res.timed_out
                      else t("timed out"))
    from sdboot.io.net import fetch_head

    result = fetch_head(cand.probe_url, deadline_s)
    error = result.error or check_body(cand.expect, result.status, result.body)
    if error:
        return Health(cand, False, None, error)
    return Health(cand, True, result.elapsed_s * 1000)


def run_health(cands: list[Candidate], deadline_s: float = DEFAULT_DEADLINE_S,
               runner: Runner | None = None) -> list[Health]:
    """Probe all candidates concurrently; whatever has not answered at the deadline is dead.
    The probe threads are daemons, so a hung server cannot hold the process."""
    runner = runner or Runner()
    results: dict[int, Health] = {}
    lock = threading.Lock()
    done = threading.Event()
    live = [i for i, c in enumerate(cands) if c.skip is None]
    for i, cand in enumerate(cands):
        if cand.skip is not None:
            results[i] = Health(cand, False, None, cand.skip)

    def work(i: int) -> None:
        try:
            health = _probe_one(cands[i], deadline_s, runner)
        except Exception as exc:  # noqa: BLE001 - a probe never takes the command down
            health = Health(cands[i], False, None, t("probe failed: {error}", error=exc))
        with lock:
            results[i] = health
            if all(j in results for j in live):
                done.set()

    if not live:
        done.set()
    for i in live:
        threading.Thread(target=work, args=(i,), daemon=True).start()
    done.wait(deadline_s)
    with lock:
        return [results.get(i) or Health(c, False, None, t("no answer within {seconds} s",
                                                           seconds=f"{deadline_s:g}"))
                for i, c in enumerate(cands)]


def rank(results: list[Health]) -> list[Health]:
    """Alive first, fastest first; then the dead, in table order."""
    alive = sorted((h for h in results if h.alive), key=lambda h: h.latency_ms or 0.0)
    return alive + [h for h in results if not h.alive]


def choose_auto(results: list[Health], table: MirrorTable) -> tuple[Selection, list[str]]:
    """Pure: per group, the upstream while it is fine, else the fastest live mirror."""
    chosen: dict[str, Mirror | None] = {}
    reasons: list[str] = []
    for group in GROUPS:
        mine = [h for h in results if h.candidate.group == group]
        if not mine:
            continue
        up = next((h for h in mine if h.candidate.name == UPSTREAM), None)
        best = next((h for h in rank(mine) if h.alive and h.candidate.name != UPSTREAM), None)
        up_fine = up is not None and up.alive and (
            best is None or (up.latency_ms or 0) <= max(UPSTREAM_OK_S * 1000,
                                                        3 * (best.latency_ms or 0)))
        if up_fine or (best is None and up is not None):
            if up is not None and not up.alive:
                reasons.append(t("{group}: upstream unreachable and no mirror answered",
                                 group=group))
            continue
        if best is not None:
            chosen[group] = table.mirrors[best.candidate.name]
            facts = {"group": group, "name": best.candidate.name,
                     "ms": f"{best.latency_ms:.0f}"}
            reasons.append(t("{group}: upstream unreachable; using {name} ({ms} ms)", **facts)
                           if up is None or not up.alive else
                           t("{group}: upstream slow ({up_ms} ms); using {name} ({ms} ms)",
                             up_ms=f"{up.latency_ms:.0f}", **facts))
    return Selection(label="auto", **chosen), reasons


# --- the cache used by --mirror auto ---------------------------------------------------------


def _cache_path() -> Path:
    return cache_dir() / "mirror-health.json"


def save_cache(results: list[Health]) -> None:
    # masked: the cache is a file, and only the names and verdicts are read back
    doc = mask_obj({"time": time.time(), "results": [
        {**h.to_json(), "probe_url": h.candidate.probe_url, "expect": h.candidate.expect}
        for h in results]})
    try:
        atomic_write(_cache_path(), json.dumps(doc).encode())
    except OSError:
        pass  # a cache that cannot be written is only slower next time


def load_cache(table: MirrorTable, max_age_s: float = CACHE_MAX_AGE_S) -> list[Health] | None:
    """The cached ranking, if fresh and made for the same candidates."""
    try:
        doc = json.loads(_cache_path().read_text(encoding="utf-8"))
        if time.time() - float(doc["time"]) > max_age_s:
            return None
        out = []
        for r in doc["results"]:
            if r["name"] != UPSTREAM and r["name"] not in table.mirrors:
                return None
            cand = Candidate(r["name"], r["group"], r["kind"], r["url"], r["probe_url"],
                             r["expect"], r.get("dead_since"))
            out.append(Health(cand, bool(r["alive"]), r.get("latency_ms"), r.get("error")))
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None


def auto_select(table: MirrorTable, deadline_s: float = DEFAULT_DEADLINE_S,
                variant: str | None = None) -> tuple[Selection, list[str], list[Health]]:
    """--mirror auto: the cached ranking when fresh, else a new health check."""
    results = load_cache(table)
    fresh = results is None
    if results is None:
        results = run_health(plan_candidates(table, variant=variant), deadline_s)
        save_cache(results)
    selection, reasons = choose_auto(results, table)
    if not fresh:
        reasons.append(t("from the health check cached less than 30 min ago "
                         "(sdboot mirror test refreshes it)"))
    return selection, reasons, results

