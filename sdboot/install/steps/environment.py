"""Create the Python environment (venv or conda) inside the WebUI folder; only ever
remove one that the install record says sdboot made."""

from __future__ import annotations

import os
import shutil

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.install.steps.base import Step
from sdboot.io.files import atomic_write, remove_tree
from sdboot.io.runner import quote
from sdboot.machine.envs import env_python
from sdboot.webui.record import forget_steps, step_done

# what `uv venv --seed` installs; a build cap on one of them also holds for the seed
_SEEDS = ("setuptools", "pip", "wheel")


class EnvironmentStep(Step):
    name = "env"

    def make_title(self) -> str:
        return t("create the Python environment ({kind})", kind=self.ctx.env_kind)

    def check(self) -> bool:
        if not step_done(self.ctx.record, "env"):
            return False
        return self.ctx.installed() is not None

    def describe(self) -> list[str]:
        if self.ctx.env_kind == "venv":
            from sdboot.stack.packages import find_uv

            if find_uv() and os.environ.get("SDBOOT_INSTALLER", "").lower() != "pip":
                return [quote(["uv", "venv", "--seed", "--python", "3.10",
                               str(self.ctx.prefix())])]
            return [quote(["python3.10", "-m", "venv", str(self.ctx.prefix())])]
        return [quote(["conda", "env", "create", "-f",
                       str(self.ctx.state / "environment.yaml"), "-p", str(self.ctx.prefix())])]

    def do(self) -> str:
        prefix = self.ctx.prefix()
        if os.path.lexists(prefix):
            if not self.ctx._made_by_sdboot(prefix) or prefix.is_symlink():
                raise SdbootError(
                    t("{prefix} exists and sdboot did not make it", prefix=prefix),
                    t("sdboot never deletes an environment it did not create: move it away "
                      "(e.g. to {name}.old) and run the command again", name=prefix.name),
                    exit_code=2)
            # a half-made (or broken) environment that sdboot made: start it again
            remove_tree(self.ctx.root, prefix, t("the environment folder"))
        forget_steps(self.ctx.record, ["torch", "verify", "requirements", "prepare", "reverify"])
        self.ctx.record["env_pending"] = {"kind": self.ctx.env_kind, "prefix": str(prefix)}
        self.ctx.save()  # before the folder exists: a killed run knows it is sdboot's
        if self.ctx.env_kind == "venv":
            from sdboot.machine.envs.venv import VenvEnv, find_python

            version = self.ctx.venv_python_version()
            base = find_python(version, self.ctx.runner)
            from sdboot.stack.packages import choose_installer

            installer = choose_installer()  # SDBOOT_INSTALLER=pip: python -m venv
            VenvEnv(prefix, base).create(self.ctx.runner,
                                         installer.exe if installer.kind == "uv" else None,
                                         env=self.ctx.pip_env(), seed_caps=tuple(
                                             c for c in self.ctx.build_caps()
                                             if c.lower().startswith(_SEEDS)))
            python_cmd = str(base)
        else:
            from sdboot.machine.envs.conda import CondaEnv, derive_environment

            exe = next((e for e in (shutil.which("conda"), shutil.which("mamba"),
                                    shutil.which("micromamba")) if e), None)
            if exe is None:
                raise SdbootError(t("conda, mamba or micromamba is not on PATH"),
                                  t("install Miniforge, or use --env venv"), exit_code=1)
            source = self.ctx.root / "environment-wsl2.yaml"
            text = source.read_text(encoding="utf-8") if source.is_file() else \
                "name: automatic\ndependencies:\n  - python=3.10\n  - pip\n"
            channel = self.ctx.selection.conda.url if self.ctx.selection.conda else None
            env_file = self.ctx.state / "environment.yaml"
            atomic_write(env_file, derive_environment(text, channel)[0].encode(),
                         root=self.ctx.root)
            CondaEnv(exe, env_file, prefix=prefix).create(self.ctx.runner)
            python_cmd = str(env_python(prefix))
        self.ctx.record.pop("env_pending", None)
        self.ctx.record["env"] = {"kind": self.ctx.env_kind, "prefix": str(prefix),
                              "python": str(env_python(prefix)), "base_python": python_cmd}
        return str(prefix)
