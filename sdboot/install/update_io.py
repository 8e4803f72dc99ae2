"""What `sdboot update` and `sdboot rollback` share: opening an install sdboot made (its
context and git through its mirror), the install lock, the update state file, the check for
the user's own changes, and the two step-UI adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import _, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import InstallOptions, StepUI, target, webui_lock
from sdboot.install.update_git import Git
from sdboot.install.update_plan import UPDATE_SCHEMA, UPDATE_STATE
from sdboot.io import git as gitops
from sdboot.io.files import atomic_write
from sdboot.io.runner import Runner
from sdboot.webui.folder import is_webui


class Offset:
    """The install's step UI, numbered after the update's own steps."""

    def __init__(self, ui: StepUI, offset: int) -> None:
        self.ui, self.offset = ui, offset
        self.last = ""  # the title of the step begun last (the one that failed, if any)

    def note(self, text: str, style: str = "") -> None:
        self.ui.note(text, style)

    def begin(self, index: int, total: int, title: str) -> None:
        self.last = title
        self.ui.begin(index + self.offset, total + self.offset, title)

    def detail(self, text: str) -> None:
        self.ui.detail(text)

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        self.ui.end(status, elapsed_s, note)


class AsNotes:
    """The automatic rollback's steps as note lines: the update's own numbered lines stay
    as they were (a live display numbers lines by their place)."""

    def __init__(self, ui: StepUI) -> None:
        self.ui = ui
        self.index = self.total = 0
        self.title = ""

    def note(self, text: str, style: str = "") -> None:
        self.ui.note(text, style)

    def begin(self, index: int, total: int, title: str) -> None:
        self.index, self.total, self.title = index, total, title

    def detail(self, text: str) -> None:
        pass

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        line = _("rollback {index}/{total}: {title}: {status} ({seconds} s)").format(
            index=self.index, total=self.total, title=self.title, status=_(status),
            seconds=f"{elapsed_s:.1f}")
        self.ui.note(f"{line}: {note}" if note else line, "red" if status == "failed" else "")


def open_install(webui_dir: Path, ui: StepUI, runner: Runner) -> tuple[InstallContext, Git]:
    """The install at webui_dir (a git checkout sdboot installed) and git on it."""
    from sdboot.mirrors.status import webui_selection

    root = target(webui_dir)
    if not is_webui(root) or not (root / ".git").exists():
        raise SdbootError(t("{dir} is not a WebUI git checkout", dir=root),
                          t("give the folder of a WebUI that `sdboot install` made"))
    ctx = InstallContext(InstallOptions(root, yes=True), ui, runner)
    if not ctx.record:
        raise SdbootError(t("{dir} has no install record: sdboot did not install it", dir=root),
                          t("run `sdboot install {dir}` first (it completes an existing "
                            "checkout)", dir=root))
    info = gitops.detect_git(runner)
    if info.exe is None:
        raise SdbootError(t("git is not installed (or not on PATH)"),
                          t("install git and run the command again"), exit_code=1)
    ctx.git = info.exe
    ctx.git_config_env = info.config_env or info.version is None
    ctx.selection = webui_selection(root, ctx.table)
    return ctx, Git(info.exe, runner, ctx.selection, ctx.table, ctx.git_config_env)


@contextmanager
def install_lock(root: Path, dry_run: bool) -> Iterator[None]:
    """The lock `sdboot install` takes (none in a dry run, which changes nothing)."""
    if dry_run:
        yield
        return
    with webui_lock(root):
        yield


def save_state(root: Path, state: dict[str, Any]) -> None:
    state["schema"] = UPDATE_SCHEMA
    atomic_write(root / UPDATE_STATE, (json.dumps(state, indent=2) + "\n").encode(), root=root)


def refuse_changes(git: Git, root: Path, force: bool) -> list[str]:
    changes = git.user_changes(root)
    if changes and not force:
        raise SdbootError(t("your own changes in {dir} are in the way: {files}", dir=root,
                            files=", ".join(changes[:10])),
                          t("commit or undo them, or run again with --force (sdboot keeps "
                            "them in a git stash and names it)"), exit_code=1)
    return changes
