"""`sdboot launch`: the WebUI's argv and environment (pure: plan_launch), the guard that
refuses to start a WebUI that cannot run on this GPU (a probe, cached while the installed
torch / torchvision / xformers files are unchanged), and the hand-over: on POSIX sdboot
replaces itself with the WebUI (signals and the exit code go straight to it); on Windows
it waits, honours the WebUI's restart request (tmp/restart) and returns its exit code."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import _, t
from sdboot.io.files import atomic_write
from sdboot.io.mask import mask_env as mask_env  # the one mask, re-exported
from sdboot.io.runner import Runner, exec_replace, quote
from sdboot.values import Finding, GpuInfo, Profile, Severity
from sdboot.webui.flags import CPU_FLAGS, vram_flags

MEMORY_FLAGS = ("--medvram", "--lowvram", "--medvram-sdxl")
GUARD_FILE = ".sdboot/guard.json"
# the refusals --allow-cpu overrides: the GPU side only (not numpy-abi, env-broken, ...)
CPU_CODES = frozenset({"cpu-torch", "driver-too-old", "gpu-arch-unsupported",
                       "cuda-unavailable", "cuda-kernel-failed", "gpu-not-visible"})
RESTART_FILE = "tmp/restart"


@dataclass(frozen=True)
class LaunchRequest:
    memory: str | None = None  # --medvram | --lowvram | auto | None
    xformers: bool = False
    listen: bool = False
    port: int | None = None
    allow_cpu: bool = False
    extra: tuple[str, ...] = ()


@dataclass
class LaunchPlan:
    argv: list[str]
    env_set: dict[str, str]  # what sdboot sets (shown by --dry-run)
    env_unset: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    cwd: Path = Path(".")

    def shell_line(self) -> str:
        return quote(self.argv)


def _dedupe(args: list[str]) -> list[str]:
    """Each flag once (the first wins); values that follow a flag stay with it."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        takes_value = arg.startswith("--") and "=" not in arg and i + 1 < len(args) \
            and not args[i + 1].startswith("--")
        group = [arg, args[i + 1]] if takes_value else [arg]
        key = arg.split("=", 1)[0]
        if key not in seen or not arg.startswith("--"):
            out.extend(group)
            seen.add(key)
        i += len(group)
    return out


def plan_args(req: LaunchRequest, gpu: GpuInfo, webui_version: str | None,
              recorded: list[str], user_args: list[str], xformers_ok: bool | None,
              cpu: bool) -> tuple[list[str], list[str]]:
    """Pure: the WebUI's arguments and notes. Order: sdboot's flags, the user's
    COMMANDLINE_ARGS, what follows `--`; a memory flag given here replaces any other."""
    notes: list[str] = []
    ours: list[str] = []
    if req.memory == "auto":
        auto = vram_flags(gpu, webui_version)
        ours += auto
        notes.append(t("--auto: {flags} for {vram} of VRAM", flags=" ".join(auto)
                       or t("no memory flag"), vram=_vram(gpu)))
    elif req.memory:
        ours.append(req.memory)
    if req.xformers:
        if xformers_ok:
            ours.append("--xformers")
        else:
            notes.append(t("--xformers left out: xformers is not installed")
                         if xformers_ok is None else
                         t("--xformers left out: the installed xformers was built for another "
                           "torch (sdboot doctor --fix)"))
    if req.listen:
        ours.append("--listen")
    if req.port is not None:
        ours += ["--port", str(req.port)]
    if cpu:
        ours += list(CPU_FLAGS)
    inherited = user_args + recorded  # what the user set now beats what install recorded
    if "--xformers" in inherited and not xformers_ok:
        inherited = [a for a in inherited if a != "--xformers"]
        if not req.xformers:
            notes.append(t("--xformers (from webui-user / the install) left out: the "
                           "installed xformers does not match torch"))
    if req.memory:  # --auto / --medvram / --lowvram decide the memory mode alone
        inherited = [a for a in inherited if a not in MEMORY_FLAGS]
    if cpu:  # no VRAM and no CUDA ops on the CPU
        gpu_only = (*MEMORY_FLAGS, "--xformers")
        dropped = [a for a in ours + inherited if a in gpu_only]
        ours = [a for a in ours if a not in gpu_only]
        inherited = [a for a in inherited if a not in gpu_only]
        if dropped:
            notes.append(t("on the CPU: {flags} left out",
                           flags=" ".join(dict.fromkeys(dropped))))
    args = _dedupe(ours + inherited + list(req.extra))
    memory = [a for a in args if a in MEMORY_FLAGS]
    if len(memory) > 1:  # one memory mode: the first (sdboot's, then yours, then recorded)
        args = [a for a in args if a not in MEMORY_FLAGS or a == memory[0]]
        notes.append(t("memory flag: {flag} (left out: {others})", flag=memory[0],
                       others=" ".join(memory[1:])))
    if "--listen" in args and not any(a.startswith(("--gradio-auth", "--api-auth"))
                                      for a in args):
        notes.append(t("warning: --listen without --gradio-auth: anyone on your network can "
                       "use this WebUI (add -- --gradio-auth user:password)"))
    return args, notes


def _vram(gpu: GpuInfo) -> str:
    sizes = [d.memory_total_mib for d in gpu.gpus if d.memory_total_mib]
    return f"{min(sizes) / 1024:.0f} GB" if sizes else t("unknown")


# --- the guard -------------------------------------------------------------------------------


def stack_fingerprint(python: Path) -> str | None:
    """The installed torch / torchvision / xformers / numpy, from their dist-info folders' names
    and times: no subprocess, so an unchanged environment costs microseconds."""
    prefix = python.parent.parent if python.parent.name in ("bin", "Scripts") else python.parent
    sites = list(prefix.glob("lib/python3*/site-packages")) + list(prefix.glob("Lib/site-packages"))
    parts = []
    for site in sites:
        for pattern in ("torch-*.dist-info", "torchvision-*.dist-info", "xformers-*.dist-info",
                        "numpy-*.dist-info"):  # numpy: the numpy-abi verdict
            for info in site.glob(pattern):
                record = info / "RECORD"
                stamp = record.stat().st_mtime_ns if record.exists() else 0
                parts.append(f"{info.name}:{stamp}")
    if not parts:
        return None
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:20]


def gpu_key(gpu: GpuInfo, webui_env: dict[str, str] | None = None) -> str:
    """What the cached verdict depends on besides the stack: the driver, the GPUs, and
    whether a process can reach them (NVML's error, CUDA_VISIBLE_DEVICES as the WebUI gets
    it, /dev/nvidia*, WSL2)."""
    from sdboot.stack.gpu_visibility import cuda_visible_setting

    return json.dumps([gpu.driver_version, gpu.cuda_driver_version,
                       [d.name for d in gpu.gpus], str(gpu.source), gpu.nvml_error_code,
                       cuda_visible_setting(gpu, webui_env)[0], gpu.access.to_json()])


def read_guard(root: Path) -> dict[str, Any]:
    """The cached verdict, or {} when there is none or it cannot be trusted (a link, a
    folder, damaged, fields of the wrong types): a cache is never a reason to skip the probe."""
    path = root / GUARD_FILE
    if path.parent.is_symlink() or path.is_symlink() or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("fingerprint"), str) or \
            doc.get("ok") is not True or not isinstance(doc.get("facts", {}), dict):
        return {}
    return doc


def run_guard(root: Path, python: Path, gpu: GpuInfo, expected: Profile | None,
              runner: Runner, *, webui_env: dict[str, str] | None = None,
              constraints: Path | None = None, numpy_pin: str | None = None,
              chosen: bool = False) -> tuple[bool, list[Finding], dict[str, Any], bool]:
    """(ok, error findings, probe facts, cached?). Reuses the last verdict while the stack
    files, the GPU facts and the expected profile are unchanged. The verdict is verify's and
    the doctor's (assess_stack; `chosen`: the expected profile is the user's, so that a cpu
    profile runs a CUDA build on the CPU); an interpreter that cannot start is env-broken."""
    from sdboot.stack.broken_env import (
        env_broken_finding,
        env_prefix,
        find_broken_env,
        interpreter_fails,
    )
    from sdboot.stack.verdict import assess_stack, run_probe

    fingerprint = stack_fingerprint(python)
    cached = read_guard(root)
    key = gpu_key(gpu, webui_env) + json.dumps([expected.name if expected else None, chosen])
    if fingerprint and cached.get("fingerprint") == fingerprint and \
            cached.get("gpu") == key and cached.get("ok"):
        return True, [], cached.get("facts") or {}, True
    try:
        probe = run_probe(python, runner)
    except SdbootError:
        broken = find_broken_env(None, python)
        if broken is None:
            failed = interpreter_fails(python, runner)
            broken = (env_prefix(python), failed) if failed else None
        if broken is None:
            raise
        return False, [env_broken_finding(*broken)], {}, False
    verdict = assess_stack(probe, gpu, expected, str(python), pinned=False,
                           webui_env=webui_env, constraints=constraints, numpy_pin=numpy_pin,
                           chosen=chosen)
    torch = probe.get("torch") or {}
    xformers = probe.get("xformers") or {}
    facts = {"torch": torch.get("version"), "cuda": torch.get("cuda"),
             "xformers": xformers.get("version") if xformers.get("installed") else None,
             "xformers_ok": (not any(f.code == "xformers-mismatch" for f in verdict.findings))
             if xformers.get("installed") else None,
             "cpu_build": torch.get("cuda") is None,
             # a CUDA build on a cpu profile without a usable GPU: the WebUI runs on the CPU
             "on_cpu": any(f.code == "gpu-not-visible" and f.severity == Severity.INFO
                           for f in verdict.findings)}
    errors = [f for f in verdict.findings if f.severity == Severity.ERROR
              and f.code not in ("xformers-mismatch", "pip-missing")]
    ok = not errors
    if fingerprint:
        try:
            atomic_write(root / GUARD_FILE, json.dumps(
                {"fingerprint": fingerprint, "gpu": key, "ok": ok,
                 "facts": facts}).encode(), root=root)
        except (OSError, SdbootError):
            pass  # a cache: a folder that cannot hold it (or a planted link) costs a probe
    return ok, errors, facts, False


# --- the hand-over ---------------------------------------------------------------------------


def user_commandline_args() -> list[str]:
    try:
        return shlex.split(os.environ.get("COMMANDLINE_ARGS", ""))
    except ValueError as exc:
        raise SdbootError(t("COMMANDLINE_ARGS cannot be parsed: {error}", error=exc),
                          t("fix the quoting in your environment or webui-user")) from None


def hand_over(plan: LaunchPlan) -> int:
    """Start the WebUI. POSIX: exec (never returns). Windows: wait, restart on request."""
    env = {k: v for k, v in os.environ.items() if k not in plan.env_unset}
    env.update(plan.env_set)
    if os.name == "posix":
        env.pop("SD_WEBUI_RESTART", None)  # nothing would be left to restart it
        exec_replace(plan.argv, env, plan.cwd)
    runner = Runner()
    env["SD_WEBUI_RESTART"] = RESTART_FILE
    while True:
        restart = plan.cwd / RESTART_FILE
        restart.unlink(missing_ok=True)
        res = runner.stream(plan.argv, timeout=10 * 365 * 86400, env=env, cwd=plan.cwd,
                            on_line=lambda line: print(line, flush=True))
        if not restart.exists():
            return res.returncode
        print(_("The WebUI asked for a restart: starting it again."), file=sys.stderr)


# --- putting it together ---------------------------------------------------------------------


def prepare_launch(webui_dir: Path | None, req: LaunchRequest, runner: Runner,
                   ) -> tuple[LaunchPlan, list[Finding]]:
    """The plan, or the guard's error findings (then the plan must not run)."""
    from sdboot.doctor.facts import DoctorFacts
    from sdboot.mirrors.env import existing_git_count, plan_mirror_env
    from sdboot.stack.packages import constraint_env, pin_matches
    from sdboot.webui.folder import is_webui

    root = (webui_dir.expanduser().resolve() if webui_dir is not None else Path.cwd())
    if not is_webui(root):
        raise SdbootError(t("{dir} is not a Stable Diffusion WebUI checkout", dir=root),
                          t("give WEBUI_DIR, or run sdboot install first"))
    facts = DoctorFacts(root, runner=runner)
    python, how = facts.python
    if python is None and facts.broken_env is not None:
        from sdboot.stack.broken_env import env_broken_finding

        return LaunchPlan([], {}), [env_broken_finding(*facts.broken_env)]
    if python is None:
        raise SdbootError(t("no Python environment for {dir}: {reason}", dir=root, reason=how),
                          t("create it: {command}",
                            command=f"sdboot install {quote([str(root)])}"), exit_code=1)
    from sdboot.doctor.checkout import start_findings

    # a folder of repositories/ that is broken or that git refuses stops the WebUI at start
    # (it never repairs one); the WebUI folder or an extension git refuses only warns
    broken, checkout_warnings = start_findings(facts)
    if broken:
        return LaunchPlan([], {}), broken
    expected, source = facts.expected
    ok, errors, gfacts, cached = run_guard(root, python, facts.gpu, expected, runner,
                                           webui_env=facts.webui_env,
                                           constraints=facts.constraints,
                                           numpy_pin=facts.numpy_pin,
                                           chosen=source != "resolver")
    cpu = False
    notes: list[str] = [t("warning: {code}: {text}", code=f.code, text=f.message)
                        for f in checkout_warnings]
    if not ok:
        if req.allow_cpu and all(f.code in CPU_CODES for f in errors):
            cpu = True
            notes.append(t("--allow-cpu: running on the CPU ({code})", code=errors[0].code))
        else:
            return LaunchPlan([], {}), errors
    elif gfacts.get("cpu_build"):
        cpu = True  # CPU torch and no NVIDIA GPU: the WebUI needs the CPU flags
    elif gfacts.get("on_cpu") and expected is not None:
        cpu = True  # a cpu profile's CUDA build, no usable GPU: on the CPU, as chosen
        notes.append(t("profile {name}: running on the CPU (no usable NVIDIA GPU)",
                       name=expected.name))
    record = facts.record
    webui_version = facts.webui.version if facts.webui else None
    from sdboot.webui.store import store_args

    # after the recorded flags, the model store's: a folder given in COMMANDLINE_ARGS wins
    args, arg_notes = plan_args(req, facts.gpu, webui_version,
                                [str(a) for a in record.get("webui_args") or []]
                                + store_args(root),
                                user_commandline_args(), gfacts.get("xformers_ok"), cpu)
    notes += arg_notes
    if cached:
        notes.insert(0, t("guard: torch stack unchanged since the last check (cached "
                          "verdict)"))
    from sdboot.mirrors.status import webui_selection

    selection = webui_selection(root, facts.mirrors)
    pins = None
    if record.get("profile") and expected is not None:
        pins = expected.pins()
    menv = plan_mirror_env(selection, facts.mirrors, facts.launch_text, pins,
                           git_count_base=existing_git_count(os.environ))
    env_set = dict(menv.vars)
    constraints = root / ".sdboot" / "constraints.txt"
    build = root / ".sdboot" / "build-constraints.txt"  # the build guard (stack/packages.py)
    build_file = build if build.is_file() else None
    if constraints.is_file() and expected is not None and \
            pin_matches(gfacts.get("torch"), expected.torch):  # 2.1.2 holds 2.1.2+cu121
        env_set.update(constraint_env(constraints, build_file))
    else:
        env_set.update(constraint_env(None, build_file))
    if constraints.is_file() and "PIP_CONSTRAINT" not in env_set:
        # the pins describe a stack that is not installed: pip would refuse every install
        notes.append(t("the installed torch is not the pinned one: PIP_CONSTRAINT left out "
                       "(sdboot doctor --fix restores the pinned stack)"))
    env_set["COMMANDLINE_ARGS"] = ""  # the flags are all in argv, none twice
    argv = [str(python), str(root / "launch.py"), *args]
    return LaunchPlan(argv, env_set, menv.unset, notes, root), []
