"""conda environments (conda, mamba or micromamba) created from the WebUI's
environment-wsl2.yaml. That file is stale (the `pytorch` channel, pytorch=2.0,
cudatoolkit=11.8: the channel has had no release after torch 2.5), so sdboot derives a
file that keeps Python, pip and the rest and drops the torch entries; torch then comes
from the profile with pip."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import remove_tree
from sdboot.io.runner import Runner
from sdboot.machine.envs import env_python

DROPPED = {"pytorch", "torch", "torchvision", "torchaudio", "cudatoolkit", "pytorch-cuda",
           "cuda-toolkit"}
DROPPED_CHANNELS = {"pytorch", "nvidia"}
CONDA_TIMEOUT_S = 1800.0


def _package_name(spec: str) -> str:
    for sep in ("=", "<", ">", "!", " ", "["):
        spec = spec.split(sep, 1)[0]
    return spec.split("::")[-1].strip().lower()


def derive_environment(text: str, channel_mirror: str | None = None,
                       name: str | None = None) -> tuple[str, dict[str, Any]]:
    """environment-wsl2.yaml -> (the derived file's text, its document). Pure."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SdbootError(t("environment-wsl2.yaml is not valid YAML: {error}", error=exc),
                          t("restore it with git checkout environment-wsl2.yaml")) from None
    deps: list[Any] = []
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            pip = [p for p in dep["pip"] or [] if _package_name(str(p)) not in DROPPED]
            if pip:
                deps.append({"pip": pip})
        elif isinstance(dep, str) and _package_name(dep) not in DROPPED:
            deps.append(dep)
    channels = [c for c in doc.get("channels") or ["defaults"] if c not in DROPPED_CHANNELS]
    if channel_mirror:
        channels = [channel_mirror] + [c for c in channels if c != channel_mirror]
    derived = {"name": name or doc.get("name") or "automatic",
               "channels": channels or ["defaults"], "dependencies": deps}
    header = ("# Derived by sdboot from the WebUI's environment-wsl2.yaml: the torch,\n"
              "# torchvision and cudatoolkit entries are dropped (torch comes from the\n"
              "# profile, with pip).\n")
    return header + yaml.safe_dump(derived, sort_keys=False), derived


def python_of_environment(doc: dict[str, Any]) -> str | None:
    """The X.Y the environment file asks for (python=3.10 -> "3.10")."""
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, str) and _package_name(dep) == "python" and "=" in dep:
            version = dep.split("=", 1)[1].lstrip("=").strip()
            return ".".join(version.split(".")[:2])
    return None


@dataclass
class CondaEnv:
    """A conda env at a prefix (inside the install) or by name (default `automatic`)."""

    exe: str
    environment_file: Path | None = None  # the derived file to create from
    prefix: Path | None = None
    name: str | None = None
    kind: str = "conda"

    def _flavour(self) -> str:
        return Path(self.exe).stem.lower()

    def _where(self) -> list[str]:
        return ["-p", str(self.prefix)] if self.prefix else ["-n", self.name or "automatic"]

    def _named_prefix(self, runner: Runner) -> Path | None:
        res = runner.run([self.exe, "env", "list", "--json"], timeout=60)
        if not res.ok:
            return None
        try:
            envs = json.loads(res.stdout).get("envs", [])
        except ValueError:
            return None
        for path in envs:
            if Path(path).name == (self.name or "automatic"):
                return Path(path)
        return None

    def resolve_prefix(self, runner: Runner) -> Path | None:
        return self.prefix or self._named_prefix(runner)

    def python(self) -> Path:
        if self.prefix is None:
            raise SdbootError(t("the conda env's location is not known yet"),
                              t("create it first"), exit_code=1)
        return env_python(self.prefix)

    def exists(self) -> bool:
        return self.prefix is not None and (self.prefix / "conda-meta").is_dir()

    def create(self, runner: Runner) -> None:
        if self.environment_file is None:
            raise SdbootError(t("no environment file to create the conda env from"),
                              t("derive one from environment-wsl2.yaml first"), exit_code=1)
        env_file = str(self.environment_file)
        if self._flavour() == "micromamba":
            argv = [self.exe, "create", "-y", "-f", env_file, *self._where()]
        else:
            argv = [self.exe, "env", "create", "-f", env_file, *self._where()]
        res = runner.stream(argv, timeout=CONDA_TIMEOUT_S)
        if not res.ok:
            raise SdbootError(t("{tool} could not create the environment: {error}",
                                tool=self._flavour(), error=res.tail(3)),
                              t("see the log; a conda mirror may help (--mirror cn)"),
                              exit_code=1)
        if self.prefix is None:
            self.prefix = self._named_prefix(runner)

    def remove(self, root: Path | None = None) -> None:
        """Delete the environment; only inside `root` (default: the folder holding it)."""
        if self.prefix is not None and self.prefix.exists():
            remove_tree(root or self.prefix.parent, self.prefix, t("the environment folder"))
