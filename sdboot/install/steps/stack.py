"""Install the profile's pinned torch stack and write the constraints file every later pip
call obeys. With --lock: every distribution of the lock instead, in one call (the torch
stack is among them), without resolution."""

from __future__ import annotations

from sdboot.i18n import N_, t
from sdboot.install.steps.base import Step
from sdboot.io.runner import quote
from sdboot.stack.packages import (
    choose_installer,
    install_stack,
    pin_matches,
    plan_stack_install,
    render_build_constraints,
    render_constraints,
)
from sdboot.webui.record import forget_steps


class StackStep(Step):
    name = "torch"
    title = N_("install the pinned torch stack")

    def make_title(self) -> str:
        return t("install exactly the lock's packages") if self.ctx.lock is not None \
            else t(type(self).title)

    def check(self) -> bool:
        assert self.ctx.profile is not None
        if self.ctx.lock is not None and not self._lock_holds():
            return False
        found = self.ctx.installed()
        if not found:
            return False
        caps = self.ctx.build_caps()
        want = {"torch": self.ctx.profile.torch, "torchvision": self.ctx.profile.torchvision}
        if self.ctx.profile.xformers:
            want["xformers"] = self.ctx.profile.xformers
        return all(pin_matches(found.get(k), v) for k, v in want.items()) and \
            self.ctx.constraints.is_file() and \
            self.ctx.constraints.read_text().startswith(
                render_constraints(self.ctx.profile, caps)) and \
            self.ctx.build_constraints.is_file() and \
            self.ctx.build_constraints.read_text() == render_build_constraints(caps)

    def _lock_holds(self) -> bool:
        from sdboot.stack.lock import freeze, lock_differences

        assert self.ctx.lock is not None
        return self.ctx.python().exists() and not lock_differences(
            self.ctx.lock, freeze(self.ctx.python(), self.ctx.runner))

    def describe(self) -> list[str]:
        assert self.ctx.profile is not None
        installer = choose_installer()
        if self.ctx.lock is not None:
            from sdboot.install.lockfile import LOCK_REQUIREMENTS, plan_lock_install

            return [quote(plan_lock_install(self.ctx, installer, self.ctx.wheel_source(),
                                            self.ctx.state / LOCK_REQUIREMENTS))]
        return [quote(c) for c in plan_stack_install(self.ctx.profile, self.ctx.python(), installer,
                                                     self.ctx.constraints, self.ctx.wheel_source(),
                                                     self.ctx.build_constraints,
                                                     self.ctx.extra_constraints())]

    def do(self) -> str:
        assert self.ctx.profile is not None
        forget_steps(self.ctx.record, ["verify", "requirements", "prepare", "reverify"])
        installer = choose_installer()
        ctx = self.ctx
        assert ctx.profile is not None
        if ctx.lock is not None:
            from sdboot.install.lockfile import install_lock

            count = install_lock(ctx, ctx.lock, installer)
            ctx.record["installer"] = installer.kind
            return t("the lock: {n} distributions with {installer}", n=count,
                     installer=installer.kind)
        install_stack(ctx.profile, ctx.python(), ctx.constraints, ctx.runner, installer,
                      ctx.wheel_source(), env=ctx.pip_env(), on_progress=ctx.ui.detail,
                      build_constraints=ctx.build_constraints, caps=ctx.build_caps(),
                      extra=ctx.extra_constraints())
        self.ctx.record["installer"] = installer.kind
        return t("torch {version} with {installer}", version=self.ctx.profile.torch,
                 installer=installer.kind)
