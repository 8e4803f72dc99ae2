"""Gathers what `verify` needs (the environment's interpreter, GPU facts, the expected
profile, webui-user's exports, the constraints file, the WebUI's numpy pin), runs the
probe once and judges it with verify.assess_stack(). An environment whose interpreter
cannot start is judged env-broken, not "not found"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.runner import Runner
from sdboot.machine.envs import locate_env
from sdboot.machine.gpu import detect_gpu, detect_host
from sdboot.stack.broken_env import (
    env_broken_finding,
    env_prefix,
    find_broken_env,
    interpreter_fails,
    webui_user_exports,
)
from sdboot.stack.fit import resolve_profile
from sdboot.stack.profiles import load_profiles
from sdboot.stack.verdict import (
    Verdict,
    assess_stack,
    expected_profile,
    make_verdict,
    run_probe,
    verdict_to_json,
    webui_numpy_pin,
)
from sdboot.values import GpuInfo
from sdboot.webui.folder import detect_webui, is_webui
from sdboot.webui.record import read_record


def find_target(webui_dir: Path | None, python: Path | None) -> tuple[Path | None, Path]:
    """(webui folder or None, interpreter)."""
    if webui_dir is None and is_webui(Path.cwd()):
        webui_dir = Path.cwd()
    if python is not None:
        return webui_dir, python
    if webui_dir is None:
        raise SdbootError(t("no WebUI here and no --python given"),
                          t("run inside the WebUI folder, give WEBUI_DIR, or --python PATH"))
    recorded = (read_record(webui_dir).get("env") or {}).get("python")
    if recorded and Path(recorded).exists():
        return webui_dir, Path(recorded)
    found, how = locate_env(webui_dir)
    if found is None:
        raise SdbootError(t("no Python environment found for {dir}: {reason}", dir=webui_dir,
                            reason=how),
                          t("give the environment's interpreter with --python PATH, "
                            "or create one with sdboot install"), exit_code=1)
    return webui_dir, found


def _recorded_prefix(webui_dir: Path | None) -> str | None:
    if webui_dir is None or not is_webui(webui_dir):
        return None
    prefix = (read_record(webui_dir).get("env") or {}).get("prefix")
    return str(prefix) if prefix else None


def _broken(prefix: Path, reason: str, python: Path, gpu: GpuInfo
            ) -> tuple[Verdict, dict[str, Any]]:
    verdict = make_verdict([env_broken_finding(prefix, reason)], t("the environment is broken"))
    return verdict, verdict_to_json(verdict, python, {}, gpu, None, "none")


def run_verify(webui_dir: Path | None, python: Path | None,
               runner: Runner | None = None) -> tuple[Verdict, dict[str, Any]]:
    runner = runner or Runner()
    where = webui_dir if webui_dir is not None else (Path.cwd() if is_webui(Path.cwd())
                                                     else None)
    try:
        webui_dir, interpreter = find_target(webui_dir, python)
    except SdbootError:
        broken = find_broken_env(where, python, _recorded_prefix(where))
        if broken is None:
            raise
        host = detect_host()
        return _broken(*broken, python or broken[0], detect_gpu(runner, host))
    webui = detect_webui(webui_dir, runner) if webui_dir is not None else None
    host = detect_host()
    gpu = detect_gpu(runner, host)
    try:
        probe = run_probe(interpreter, runner)
    except SdbootError:
        broken = find_broken_env(webui_dir, interpreter, _recorded_prefix(webui_dir))
        if broken is None and interpreter.exists():
            failed = interpreter_fails(interpreter, runner)
            broken = (env_prefix(interpreter), failed) if failed else None
        if broken is None:
            raise
        return _broken(*broken, interpreter, gpu)
    profiles = load_profiles()
    py_version = ".".join(str(probe.get("python", "3.10")).split(".")[:2])
    resolved = resolve_profile(profiles, gpu, host, py_version, webui).profile
    expected, source = expected_profile(profiles, webui.pins.torch if webui else None, resolved)
    recorded = read_record(webui_dir).get("profile") if webui_dir is not None else None
    if recorded in profiles:  # CONTRACT: the install record comes first
        expected, source = profiles[recorded], "install-record"
    constraints = webui_dir / ".sdboot" / "constraints.txt" if webui_dir is not None else None
    verdict = assess_stack(probe, gpu, expected, str(interpreter), pinned=source != "resolver",
                           webui_env=webui_user_exports(webui_dir),
                           constraints=constraints if constraints and constraints.is_file()
                           else None,
                           numpy_pin=webui_numpy_pin(webui_dir))
    return verdict, verdict_to_json(verdict, interpreter, probe, gpu, expected, source)
