"""Gathers what `verify` needs (the environment's interpreter, GPU facts, the expected
profile), runs the probe once and judges it with verify.assess_stack()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdboot.envs import locate_env
from sdboot.errors import SdbootError
from sdboot.gpu import detect_gpu, detect_host
from sdboot.profiles import load_profiles, resolve_profile
from sdboot.record import read_record
from sdboot.runner import Runner
from sdboot.verify import Verdict, assess_stack, expected_profile, run_probe, verdict_to_json
from sdboot.webui import detect_webui, is_webui


def find_target(webui_dir: Path | None, python: Path | None) -> tuple[Path | None, Path]:
    """(webui folder or None, interpreter)."""
    if webui_dir is None and is_webui(Path.cwd()):
        webui_dir = Path.cwd()
    if python is not None:
        return webui_dir, python
    if webui_dir is None:
        raise SdbootError("no WebUI here and no --python given",
                          "run inside the WebUI folder, give WEBUI_DIR, or --python PATH")
    recorded = (read_record(webui_dir).get("env") or {}).get("python")
    if recorded and Path(recorded).exists():
        return webui_dir, Path(recorded)
    found, how = locate_env(webui_dir)
    if found is None:
        raise SdbootError(f"no Python environment found for {webui_dir}: {how}",
                          "give the environment's interpreter with --python PATH, "
                          "or create one with sdboot install", exit_code=1)
    return webui_dir, found


def run_verify(webui_dir: Path | None, python: Path | None,
               runner: Runner | None = None) -> tuple[Verdict, dict[str, Any]]:
    runner = runner or Runner()
    webui_dir, interpreter = find_target(webui_dir, python)
    webui = detect_webui(webui_dir, runner) if webui_dir is not None else None
    host = detect_host()
    gpu = detect_gpu(runner, host)
    probe = run_probe(interpreter, runner)
    profiles = load_profiles()
    py_version = ".".join(str(probe.get("python", "3.10")).split(".")[:2])
    resolved = resolve_profile(profiles, gpu, host, py_version, webui).profile
    expected, source = expected_profile(profiles, webui.pins.torch if webui else None, resolved)
    recorded = read_record(webui_dir).get("profile") if webui_dir is not None else None
    if recorded in profiles:  # CONTRACT: the install record comes first
        expected, source = profiles[recorded], "install-record"
    verdict = assess_stack(probe, gpu, expected, str(interpreter), pinned=source != "resolver")
    return verdict, verdict_to_json(verdict, interpreter, probe, gpu, expected, source)
