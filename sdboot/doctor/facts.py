"""What the doctor knows, gathered once and lazily: the WebUI folder, its install record,
the environment's interpreter (found without a record too), the probe (one subprocess
for all torch checks), GPU facts, the expected profile in CONTRACT order."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.git import GitInfo
from sdboot.io.runner import Runner
from sdboot.machine.envs import env_python, locate_env
from sdboot.mirrors.table import MirrorTable
from sdboot.values import GpuInfo, HostFacts, Profile, WebuiFacts


@dataclass
class DoctorFacts:
    webui_dir: Path | None
    python_arg: Path | None = None
    profile_arg: str | None = None
    offline: bool = False
    runner: Runner = field(default_factory=Runner)

    # -- the WebUI -----------------------------------------------------------------------
    @cached_property
    def is_webui(self) -> bool:
        from sdboot.webui.folder import is_webui

        return self.webui_dir is not None and is_webui(self.webui_dir)

    @cached_property
    def webui(self) -> WebuiFacts | None:
        from sdboot.webui.folder import detect_webui

        if not self.is_webui or self.webui_dir is None:
            return None
        return detect_webui(self.webui_dir, self.runner)

    @cached_property
    def record(self) -> dict[str, Any]:
        from sdboot.webui.record import read_record

        if not self.is_webui or self.webui_dir is None:
            return {}
        try:
            return read_record(self.webui_dir)
        except SdbootError:
            return {}

    @cached_property
    def launch_text(self) -> str | None:
        from sdboot.webui.folder import launch_file

        if not self.is_webui or self.webui_dir is None:
            return None
        lf = launch_file(self.webui_dir)
        return lf.read_text(encoding="utf-8", errors="replace") if lf else None

    # -- the environment -----------------------------------------------------------------
    @cached_property
    def python(self) -> tuple[Path | None, str]:
        """(interpreter, how it was found): --python; the install record; webui-user.sh /
        .bat; venv/ in the folder; an active conda env named `automatic`."""
        if self.python_arg is not None:
            return self.python_arg, "--python"
        recorded = (self.record.get("env") or {}).get("python")
        if recorded and Path(recorded).exists():
            return Path(recorded), t("the install record")
        if self.is_webui and self.webui_dir is not None:
            found, how = locate_env(self.webui_dir)
            if found is not None:
                return found, how
        prefix = os.environ.get("CONDA_PREFIX")
        if prefix and Path(prefix).name == "automatic" and env_python(Path(prefix)).exists():
            return env_python(Path(prefix)), t("the active conda env 'automatic'")
        return None, t("no --python, no install record, no venv/ and no webui-user setting")

    @cached_property
    def probe(self) -> dict[str, Any] | None:
        """One probe subprocess, shared by every check. None when there is no interpreter;
        {"error": ...} when it does not run."""
        from sdboot.stack.verdict import run_probe

        python, _ = self.python
        if python is None:
            return None
        try:
            return run_probe(python, self.runner)
        except SdbootError as exc:
            return {"error": exc.message}

    @cached_property
    def broken_env(self) -> tuple[Path, str] | None:
        """(prefix, why) when the WebUI's environment exists but its interpreter cannot
        start (base Python gone or moved, a dangling bin/python, a conda env without its
        python); found without a working interpreter, so also when `python` is None."""
        from sdboot.stack.broken_env import env_prefix, find_broken_env, interpreter_fails

        python, _ = self.python
        recorded = (self.record.get("env") or {}).get("prefix")
        found = find_broken_env(self.webui_dir if self.is_webui else None,
                                python or self.python_arg, str(recorded) if recorded else None)
        if found is not None or python is None or not (self.probe and "error" in self.probe):
            return found
        failed = interpreter_fails(python, self.runner) if python.exists() else "missing"
        return (env_prefix(python), failed) if failed else None

    @cached_property
    def webui_env(self) -> dict[str, str]:
        """What webui-user.sh / .bat sets for the WebUI (CUDA_VISIBLE_DEVICES, ...)."""
        from sdboot.stack.broken_env import webui_user_exports

        return webui_user_exports(self.webui_dir) if self.is_webui else {}

    @property
    def constraints(self) -> Path | None:
        """sdboot's pins file for this WebUI, when there is one."""
        if self.webui_dir is None:
            return None
        path = self.webui_dir / ".sdboot" / "constraints.txt"
        return path if path.is_file() else None

    @cached_property
    def numpy_pin(self) -> str | None:
        from sdboot.stack.verdict import webui_numpy_pin

        return webui_numpy_pin(self.webui_dir) if self.is_webui else None

    # -- the machine ---------------------------------------------------------------------
    @cached_property
    def host(self) -> HostFacts:
        from sdboot.machine.gpu import detect_host

        return detect_host()

    @cached_property
    def gpu(self) -> GpuInfo:
        from sdboot.machine.gpu import detect_gpu

        return detect_gpu(self.runner, self.host)

    @cached_property
    def profiles(self) -> dict[str, Profile]:
        from sdboot.stack.profiles import load_profiles

        return load_profiles()

    @cached_property
    def expected(self) -> tuple[Profile | None, str]:
        """CONTRACT order: the install record, --profile, the launch file's pins, the
        resolver."""
        from sdboot.stack.fit import resolve_profile
        from sdboot.stack.profiles import get_profile
        from sdboot.stack.verdict import expected_profile

        recorded = self.record.get("profile")
        if recorded in self.profiles:
            return self.profiles[str(recorded)], "install-record"
        if self.profile_arg:
            return get_profile(self.profiles, self.profile_arg), "--profile"
        py = "3.10"
        if self.probe and self.probe.get("python"):
            py = ".".join(str(self.probe["python"]).split(".")[:2])
        resolved = resolve_profile(self.profiles, self.gpu, self.host, py, self.webui).profile
        pins = self.webui.pins.torch if self.webui else None
        return expected_profile(self.profiles, pins, resolved)

    @cached_property
    def mirrors(self) -> MirrorTable:
        from sdboot.mirrors.loading import load_mirrors

        return load_mirrors()

    def git(self) -> GitInfo:
        from sdboot.io.git import detect_git

        return detect_git(self.runner)

    @property
    def sdboot_argv(self) -> list[str]:
        return [sys.executable, "-m", "sdboot"]
