"""Write sdboot's managed blocks (environment, flags, pins, mirrors) into webui-user.sh
and webui-user.bat, so the WebUI's own scripts keep working."""

from __future__ import annotations

from sdboot.install.plan import INSTALL_BLOCK, install_block
from sdboot.install.steps.base import Step
from sdboot.mirrors.blocks import MIRROR_BLOCK, UserFile, plan_user_file, write_user_files
from sdboot.mirrors.env import plan_mirror_env
from sdboot.webui.folder import launch_file
from sdboot.webui.record import step_done


class WebuiUserStep(Step):
    name = "webui-user"
    title = "write webui-user.sh / webui-user.bat"

    def describe(self) -> list[str]:
        return ["edit webui-user.sh and webui-user.bat (managed blocks)"]

    def _user_files(self) -> list[UserFile]:
        assert self.ctx.profile is not None
        env = self.ctx.record.get("env") or {}
        ctx = self.ctx
        venv_dir = "venv" if ctx.env_kind == "venv" and ctx.prefix() == ctx.root / "venv" \
            else ("-" if ctx.env_kind == "conda" else str(ctx.prefix()))
        python_cmd = env.get("base_python") or str(self.ctx.python())
        block = install_block(python_cmd, venv_dir, self.ctx.webui_args(), self.ctx.constraints,
                              self.ctx.build_constraints)
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
        return "COMMANDLINE_ARGS=" + (" ".join(self.ctx.webui_args()) or "(none)")
