"""The install steps in their order; each is a small object with check / describe / do.

    clone -> env -> torch -> verify -> requirements -> prepare -> reverify -> webui-user
          -> record"""

from __future__ import annotations

from sdboot.install.context import InstallContext
from sdboot.install.steps.base import Step as Step
from sdboot.install.steps.clone import CloneStep
from sdboot.install.steps.environment import EnvironmentStep
from sdboot.install.steps.prepare import PrepareStep
from sdboot.install.steps.record import RecordStep
from sdboot.install.steps.requirements import RequirementsStep
from sdboot.install.steps.stack import StackStep
from sdboot.install.steps.verify import ReverifyStep, VerifyStep
from sdboot.install.steps.webui_user import WebuiUserStep

ORDER: tuple[type[Step], ...] = (CloneStep, EnvironmentStep, StackStep, VerifyStep,
                                 RequirementsStep, PrepareStep, ReverifyStep, WebuiUserStep,
                                 RecordStep)


def plan_steps(ctx: InstallContext) -> list[Step]:
    return [kind(ctx) for kind in ORDER]
