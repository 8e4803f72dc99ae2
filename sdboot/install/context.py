"""What every install step shares: the options, the install record, the catalog, the mirror
table and selection, the chosen profile, and the environment and paths derived from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.install.catalog import KnownWebui, known_for, load_catalog, same_repo
from sdboot.install.plan import STATE, InstallOptions, StepUI, target
from sdboot.io.runner import Runner
from sdboot.machine.envs import env_python
from sdboot.mirrors.blocks import exclude_from_git
from sdboot.mirrors.env import existing_git_count, plan_mirror_env
from sdboot.mirrors.loading import load_mirrors
from sdboot.mirrors.origins import ClonePlan, plan_clone
from sdboot.mirrors.table import MirrorTable, Selection
from sdboot.stack.packages import WheelSource, constraint_env, mirror_source, query_installed
from sdboot.values import GpuInfo, GpuSource, HostFacts, Profile, Vendor
from sdboot.webui.folder import launch_file, origin_url
from sdboot.webui.record import ENV_DIRS, read_record, write_record


class InstallContext:
    """One install's shared state; the steps read and update it, the run saves it."""

    def __init__(self, opts: InstallOptions, ui: StepUI, runner: Runner,
                 gpu: GpuInfo | None = None, host: HostFacts | None = None) -> None:
        from sdboot.install.lockfile import open_lock

        # --lock FILE: read and checked here, before anything changes (exit 2); it sets the
        # profile, and the repository and commit below
        self.opts, self.lock = open_lock(opts)
        opts = self.opts
        self.ui = ui
        self.runner = runner
        self.root = target(opts.webui_dir)
        self.state = self.root / STATE
        self.record: dict[str, Any] = read_record(self.root) if self.root.is_dir() else {}
        recorded = self.record.get("lock")
        if self.lock is None and isinstance(recorded, str) and not self.record.get("complete"):
            # an interrupted `install --lock` resumes as it began: the lock decides (once
            # complete, a later install or update is an install of its own)
            self.opts, self.lock = open_lock(replace(self.opts, lock=Path(recorded)))
            opts = self.opts
        self.catalog = load_catalog()
        self.table: MirrorTable = load_mirrors()
        self.gpu = gpu
        self.host = host
        self.confirm: Callable[[str], bool] | None = None  # asks before changing anything
        self._installed: dict[str, str | None] | None = None
        self.notes: list[str] = []
        self._excluded = False
        self.selection: Selection = Selection()
        self.profile: Profile | None = None
        self.git = "git"
        self.git_config_env = True  # git reads GIT_CONFIG_* (>= 2.31; preflight asks git)
        default = self.catalog.get("a1111")
        self.repo = (opts.webui_repo or (self.lock.webui_repo if self.lock else None)
                     or self.record.get("repo")
                     or (default.repo if default else None))
        if not self.repo:
            raise SdbootError(t("no WebUI repository known"), t("give --webui-repo URL"))
        # what the folder holds: the record's repository, else a checkout's origin
        recorded = self.record.get("repo") or (origin_url(self.root) if (
            self.root / ".git").is_dir() else None)
        if opts.webui_repo and isinstance(recorded, str) and not same_repo(recorded,
                                                                           opts.webui_repo):
            raise SdbootError(t("{dir} holds {repo}, not {wanted}", dir=self.root,
                                repo=recorded, wanted=opts.webui_repo),
                              t("install into another folder (sdboot install NEW_DIR "
                                "--webui NAME); nothing was changed"))
        self.known: KnownWebui | None = known_for(self.catalog, self.repo)
        known = self.known
        self.ref = opts.ref or (self.lock.webui_commit if self.lock else None) \
            or self.record.get("ref") or (known.default_ref if known else None)
        self.env_kind = opts.env_kind or (self.record.get("env") or {}).get("kind") or "venv"
        if self.env_kind not in ("venv", "conda"):
            raise SdbootError(t("unknown --env '{kind}'", kind=self.env_kind),
                              t("use venv or conda"))

    @property
    def constraints(self) -> Path:
        return self.state / "constraints.txt"

    @property
    def build_constraints(self) -> Path:
        """The constraints of build environments (PIP_BUILD_CONSTRAINT, UV_BUILD_CONSTRAINT,
        uv's --build-constraint): the setuptools cap for builds that import pkg_resources."""
        return self.state / "build-constraints.txt"

    def build_caps(self) -> list[str]:
        """The build constraints: the WebUI's from the catalog (per release; the default
        cap for a WebUI not in it), then the profile's own."""
        from sdboot.install.catalog import webui_build_caps
        from sdboot.stack.packages import build_caps

        return build_caps(webui_build_caps(self.catalog, self.repo, self.ref), self.profile)

    def _build_guard(self) -> dict[str, str]:
        """PIP_BUILD_CONSTRAINT / UV_BUILD_CONSTRAINT, writing the file first where it is
        missing (pip and uv refuse a constraints file that does not exist)."""
        path = self.build_constraints
        if not path.is_file() and self.root.is_dir() and not self.opts.dry_run:
            from sdboot.io.files import atomic_write
            from sdboot.stack.packages import render_build_constraints

            self.state.mkdir(exist_ok=True)
            atomic_write(path, render_build_constraints(self.build_caps()).encode(),
                         root=self.root)
        return constraint_env(None, path) if path.is_file() else {}

    def prefix(self) -> Path:
        """The environment folder: always the one sdboot makes for the kind, inside the
        WebUI folder (read_record proved a recorded one is exactly that)."""
        saved = (self.record.get("env") or {}).get("prefix")
        if saved and (self.opts.env_kind is None or self.opts.env_kind == self.env_kind):
            return Path(saved)
        return self.root / ENV_DIRS[self.env_kind]

    def _made_by_sdboot(self, prefix: Path) -> bool:
        """Whether the record says sdboot made (or started making) this folder."""
        return any(str(prefix) == (self.record.get(key) or {}).get("prefix")
                   for key in ("env", "env_pending"))

    def python(self) -> Path:
        return env_python(self.prefix())

    def venv_python_version(self) -> str:
        """The X.Y of the venv's base Python: the WebUI's tested one, if the profile allows."""
        from sdboot.install.plan import python_for

        return python_for(self.profile, self.known.python if self.known else None)

    def clone_plan(self, url: str) -> ClonePlan:
        """sdboot's own clone of url: the upstream through the GitHub mirror's insteadOf
        rules, so that origin stays the upstream (the WebUI's come with webui_env)."""
        return plan_clone(url, self.selection.github, self.table,
                          config_env=self.git_config_env,
                          git_count_base=existing_git_count(os.environ))

    def webui_env(self) -> dict[str, str]:
        """The environment of the WebUI's own processes: the mirror variables (env mode),
        the profile's exact stack, the constraints for every pip call, no user flags."""
        assert self.profile is not None
        lf = launch_file(self.root)
        text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
        plan = plan_mirror_env(self.selection, self.table, text, self.profile.pins(),
                               git_count_base=existing_git_count(os.environ),
                               git_config_env=self.git_config_env)
        env = plan.apply_to(dict(os.environ))
        env.update(constraint_env(self.constraints))
        env.update(self._build_guard())
        env["COMMANDLINE_ARGS"] = ""
        env["PYTHONNOUSERSITE"] = "1"
        if self.selection.pypi is not None:
            env["UV_INDEX_URL"] = self.selection.pypi.url
        return env

    def pip_env(self) -> dict[str, str]:
        """sdboot's own installs: the index, and the build guard (for pip's fallback too)."""
        env = dict(os.environ)
        env.update(self._build_guard())
        if self.selection.pypi is not None:
            env["PIP_INDEX_URL"] = self.selection.pypi.url
            env["UV_INDEX_URL"] = self.selection.pypi.url
        return env

    def wheel_source(self) -> WheelSource:
        assert self.profile is not None
        mirror = self.selection.torch
        if mirror is None or not self.profile.variant:
            return mirror_source(self.profile, None, None)
        return mirror_source(self.profile, mirror.url_for(self.profile.variant), str(mirror.kind))

    def extra_constraints(self) -> list[Path]:
        """The constraints files, besides the profile's (self.constraints), that the WebUI's
        requirements install passes with `-c`, each written into .sdboot/ on the first call
        (named, not written, in a dry run):
        - with --lock FILE: .sdboot/lock-constraints.txt, every distribution of the lock at
          its exact version (the lock decides; no release set then);
        - else, for a catalogued release with a shipped known-good set (constraints/<webui>/
          <tag>.txt, see stack/release_constraints.py): .sdboot/release-constraints.txt, that
          set less any pin the profile's constraints disagree with;
        - else nothing."""
        from sdboot.install.lockfile import write_extra_constraints

        return write_extra_constraints(self)

    def webui_args(self) -> list[str]:
        saved = self.record.get("webui_args")
        # the recorded flags while the profile stays (--lock gives the recorded one again)
        if isinstance(saved, list) and self.opts.profile in (None, self.record.get("profile")):
            return [str(a) for a in saved]
        from sdboot.webui.flags import webui_args

        assert self.profile is not None
        gpu = self.gpu or GpuInfo(Vendor.NONE, GpuSource.NONE)
        return webui_args(gpu, self.profile, self.record.get("webui_version"))

    def installed(self) -> dict[str, str | None] | None:
        """torch / torchvision / xformers / pip versions in the environment, asked once and
        again only after a step that installs something (see _run_locked)."""
        if self._installed is None:
            self._installed = query_installed(self.python(), self.runner) or {}
        return self._installed or None

    def save(self) -> None:
        if self.root.is_dir() and not self.opts.dry_run:
            write_record(self.root, self.record)
            if not self._excluded:  # keep .sdboot/ out of `git status`, once a run
                self._excluded = True
                self.notes.extend(exclude_from_git(self.root, (f"/{STATE}/",)))
