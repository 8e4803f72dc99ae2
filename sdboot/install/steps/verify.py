"""Prove the stack in the environment runs on this machine (the probe and the verdict),
once after the stack step and again after the WebUI's own preparation."""

from __future__ import annotations

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import fingerprint
from sdboot.install.steps.base import Step
from sdboot.io.runner import quote
from sdboot.stack.packages import pin_matches
from sdboot.webui.record import forget_steps, mark_step, step_done

# The second verify's note when the WebUI's preparation left everything the probe depends on
# as verify proved it: the probe (about 7 s with a real torch on 2 cores) does not run again.
TORCH_UNCHANGED = N_("torch unchanged since verify (not probed again)")
# What the probe's verdict depends on besides the torch stack: numpy (the numpy-abi break),
# the CUDA libraries torch loads, triton. A change in any of them runs the probe again.
_PROBED = ("torch", "torchvision", "xformers", "numpy", "triton")


def stack_fingerprint(ctx: InstallContext) -> str:
    return fingerprint(ctx.installed())


def probed_fingerprint(ctx: InstallContext) -> str | None:
    """The versions of everything the probe's verdict depends on (None: unknown)."""
    from sdboot.stack.lock import freeze

    try:
        found = freeze(ctx.python(), ctx.runner)
    except SdbootError:
        return None
    return fingerprint(sorted((n, v) for n, v in found.items()
                              if n in _PROBED or n.startswith("nvidia-")))


def verify_stack(ctx: InstallContext) -> str:
    from sdboot.machine.gpu import detect_gpu, detect_host
    from sdboot.stack.verdict import assess_stack, run_probe

    assert ctx.profile is not None
    ctx.host = ctx.host or detect_host()
    ctx.gpu = ctx.gpu or detect_gpu(ctx.runner, ctx.host)
    probe = run_probe(ctx.python(), ctx.runner)
    verdict = assess_stack(probe, ctx.gpu, ctx.profile, str(ctx.python()), pinned=True)
    if not verdict.ok:
        first = next(f for f in verdict.findings if f.severity == "error")
        advice = first.fix.summary if first.fix else t("see sdboot verify")
        if first.fix is not None and first.fix.commands:
            advice = t("{advice}; fix: {commands}", advice=advice,
                       commands=" && ".join(quote(c) for c in first.fix.commands))
        raise SdbootError(t("verify failed: [{code}] {finding}", code=first.code,
                            finding=first.message), advice, exit_code=1)
    return verdict.summary


class VerifyStep(Step):
    name = "verify"

    def make_title(self) -> str:
        if self.ctx.profile is not None and self.ctx.profile.backend != "cuda":
            return t("verify {backend} torch on this machine",
                     backend=self.ctx.profile.backend)
        return t("verify CUDA torch on this GPU")

    def describe(self) -> list[str]:
        return [f"{self.ctx.python()} -I <sdboot probe>"]

    def check(self) -> bool:
        done = step_done(self.ctx.record, "verify") or {}
        return bool(done) and done.get("fingerprint") == stack_fingerprint(self.ctx)

    def do(self) -> str:
        summary = verify_stack(self.ctx)
        mark_step(self.ctx.record, "verify", fingerprint=stack_fingerprint(self.ctx),
                  probed=probed_fingerprint(self.ctx))
        return summary


class ReverifyStep(Step):
    name = "reverify"
    title = N_("verify torch is unchanged")

    def describe(self) -> list[str]:
        return [f"{self.ctx.python()} -I <sdboot probe>"]

    def check(self) -> bool:
        done = step_done(self.ctx.record, "reverify") or {}
        return bool(done) and done.get("fingerprint") == stack_fingerprint(self.ctx)

    def do(self) -> str:
        assert self.ctx.profile is not None
        found = self.ctx.installed() or {}
        # a pin without a local label (cpu-pypi's torch 2.1.2) holds 2.1.2+cu121
        if not pin_matches(found.get("torch"), self.ctx.profile.torch) or \
                not pin_matches(found.get("torchvision"), self.ctx.profile.torchvision):
            forget_steps(self.ctx.record, ["torch", "verify"])
            raise SdbootError(
                t("[torch-drift] the WebUI's setup replaced torch {pinned} with {torch} "
                  "(torchvision {torchvision})", pinned=self.ctx.profile.torch,
                  torch=str(found.get("torch")), torchvision=str(found.get("torchvision"))),
                t("run sdboot install again: it reinstalls the pinned stack"), exit_code=1)
        verified = (step_done(self.ctx.record, "verify") or {}).get("probed")
        if verified is not None and verified == probed_fingerprint(self.ctx):
            # the same distributions the probe proved before the WebUI's preparation
            mark_step(self.ctx.record, "reverify", fingerprint=stack_fingerprint(self.ctx))
            return t(TORCH_UNCHANGED)
        summary = verify_stack(self.ctx)
        mark_step(self.ctx.record, "reverify", fingerprint=stack_fingerprint(self.ctx))
        return summary
