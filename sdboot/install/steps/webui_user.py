"""Write sdboot's managed blocks (environment, flags, pins, mirrors) into webui-user.sh
and webui-user.bat, so the WebUI's own scripts keep working."""

from __future__ import annotations

from pathlib import Path

from sdboot.i18n import N_, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import INSTALL_BLOCK, install_block
from sdboot.install.steps.base import Step
from sdboot.mirrors.blocks import MIRROR_BLOCK, UserFile, plan_user_file, write_user_files
from sdboot.mirrors.env import plan_mirror_env
from sdboot.webui.folder import launch_file
from sdboot.webui.record import step_done
from sdboot.webui.store import store_args


class WebuiUserStep(Step):
    name = "webui-user"
    title = N_("write webui-user.sh / webui-user.bat")

    def describe(self) -> list[str]:
        return [t("edit webui-user.sh and webui-user.bat (managed blocks)")]

    def _user_files(self) -> list[UserFile]:
        assert self.ctx.profile is not None
        env = self.ctx.record.get("env") or {}
        ctx = self.ctx
        venv_dir = "venv" if ctx.env_kind == "venv" and ctx.prefix() == ctx.root / "venv" \
            else ("-" if ctx.env_kind == "conda" else str(ctx.prefix()))
        python_cmd = env.get("base_python") or str(self.ctx.python())
        # the model store's flags (webui/store.py) after sdboot's own: one store for every
        # install, read from the user config each time the block is written
        block = install_block(python_cmd, venv_dir,
                              self.ctx.webui_args() + store_args(self.ctx.root),
                              self.ctx.constraints, self.ctx.build_constraints)
        lf = launch_file(self.ctx.root)
        text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
        mirror = plan_mirror_env(self.ctx.selection, self.ctx.table, text, self.ctx.profile.pins(),
                                 git_config_env=self.ctx.git_config_env)
        return [plan_user_file(self.ctx.root, name, shell,
                               [(INSTALL_BLOCK, block), (MIRROR_BLOCK, mirror)])
                for name, shell in (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))]

    def check(self) -> bool:
        if not step_done(self.ctx.record, "webui-user"):
            return False
        return all(uf.exists and not uf.changed for uf in self._user_files())

    def do(self) -> str:
        self.ctx.notes.extend(write_user_files(self.ctx.root, self._user_files()))
        self.ctx.record["webui_args"] = self.ctx.webui_args()
        flags = " ".join(self.ctx.webui_args())
        return "COMMANDLINE_ARGS=" + flags if flags else t("COMMANDLINE_ARGS=(none)")


class _Quiet:
    """No output: rewriting the block is all `apply_store` does."""

    def note(self, text: str, style: str = "") -> None:
        pass

    def begin(self, index: int, total: int, title: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        pass


def apply_store(root: Path) -> tuple[bool, list[str]]:
    """Write the webui-user block of an install sdboot made again, now with the model
    store's flags: (changed, notes). Only the managed block changes (the user's lines stay;
    their first copy is kept beside the file)."""
    from sdboot.install.plan import InstallOptions
    from sdboot.io.runner import Runner
    from sdboot.mirrors.status import webui_selection
    from sdboot.stack.profiles import get_profile, load_profiles

    ctx = InstallContext(InstallOptions(root), _Quiet(), Runner())
    if not ctx.record.get("profile") or not step_done(ctx.record, "webui-user"):
        return False, [t("{dir}: the install is not complete; `sdboot install` writes the "
                         "store's flags when it finishes", dir=root)]
    ctx.profile = get_profile(load_profiles(), str(ctx.record["profile"]))
    ctx.selection = webui_selection(root, ctx.table)
    step = WebuiUserStep(ctx)
    files = step._user_files()
    if not any(uf.changed for uf in files):
        return False, []
    return True, write_user_files(root, files)
