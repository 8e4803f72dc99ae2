"""`sdboot install`: a fresh machine to a verified WebUI, as a plan of steps. Each step
knows how to check that it is already done and how to do it; the install record
(record.py) is written after every step, so a run that was interrupted (Ctrl-C, a kill, a
cut network) resumes where it stopped, and a run on a complete install only checks.

    clone -> env -> torch -> verify -> prepare (the WebUI's own launch.py --exit)
          -> reverify -> webui-user -> record

Effects go through the runner (git, pip/uv, the WebUI), the file funnel and the health
check; the step UI only reports."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sdboot import gitops
from sdboot.catalog import known_for, load_catalog, pinned_commit
from sdboot.envs import env_python
from sdboot.errors import KEPT_RESUME, SdbootError, keep_on_interrupt
from sdboot.fsutil import atomic_write, exclusive_lock, remove_tree
from sdboot.mirror_apply import (
    MIRROR_BLOCK,
    BlockKind,
    UserFile,
    exclude_from_git,
    plan_user_file,
    webui_selection,
    write_user_files,
)
from sdboot.mirror_env import (
    MirrorEnv,
    existing_git_count,
    plan_mirror_env,
)
from sdboot.mirrors import MirrorTable, Selection, load_mirrors, map_url, select
from sdboot.model import (
    GpuInfo,
    GpuSource,
    HostFacts,
    Profile,
    Vendor,
    WebuiFacts,
)
from sdboot.packages import (
    WheelSource,
    choose_installer,
    constraint_env,
    install_stack,
    mirror_source,
    plan_stack_install,
    query_installed,
    render_constraints,
)
from sdboot.record import (
    ENV_DIRS,
    forget_steps,
    mark_step,
    read_record,
    step_done,
    write_record,
)
from sdboot.runner import Runner, quote
from sdboot.webui import is_webui, launch_file, parse_env_defaults, parse_webui_version

PREPARE_TIMEOUT_S = 3600.0
STATE = ".sdboot"
INSTALL_MARKERS = (">>> sdboot install (managed: sdboot install) >>>", "<<< sdboot install <<<")
INSTALL_BLOCK = BlockKind(INSTALL_MARKERS, re.compile(
    "python_cmd|PYTHON|venv_dir|VENV_DIR|COMMANDLINE_ARGS|PIP_CONSTRAINT"))
# Free disk: below NEED_GB the profile cannot install; below RECOMMENDED_GB warn (the
# full install is about 12 GB before any model).
NEED_GB = {"cuda": 8.0, "rocm": 12.0, "cpu": 3.0, "mps": 3.0}
RECOMMENDED_GB = 12.0
_HEX_REF = re.compile(r"[0-9a-f]{7,40}")


class StepUI(Protocol):
    def note(self, text: str, style: str = "") -> None: ...

    def begin(self, index: int, total: int, title: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def end(self, status: str, elapsed_s: float, note: str = "") -> None: ...


@dataclass
class InstallOptions:
    webui_dir: Path
    profile: str | None = None
    mirror: str | None = None  # preset / mirror name, auto, none; None: the record's or none
    env_kind: str | None = None  # venv | conda; None: the record's or venv
    webui_repo: str | None = None
    ref: str | None = None
    dry_run: bool = False
    yes: bool = False
    insecure: bool = False


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # done | skipped | planned | failed
    elapsed_s: float = 0.0
    note: str = ""
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status,
                "elapsed_s": round(self.elapsed_s, 3), "note": self.note,
                "commands": self.commands}


@dataclass
class InstallReport:
    webui: Path
    steps: list[StepResult]
    profile: str | None
    env_python: str | None
    selection: dict[str, Any]
    complete: bool
    nothing_to_do: bool
    log: Path | None
    notes: list[str] = field(default_factory=list)
    webui_args: list[str] = field(default_factory=list)

    def next_command(self) -> str:
        return f"sdboot launch {quote([str(self.webui)])}"

    def webui_script(self) -> str:
        """The WebUI's own way, which the webui-user blocks keep working."""
        root = quote([str(self.webui)])
        return f"cd {root} && " + ("webui-user.bat" if sys.platform == "win32" else "./webui.sh")

    def to_json(self) -> dict[str, Any]:
        return {"schema": "sdboot.install/1", "webui": str(self.webui), "profile": self.profile,
                "python": self.env_python, "mirror": self.selection,
                "complete": self.complete, "nothing_to_do": self.nothing_to_do,
                "steps": [s.to_json() for s in self.steps], "notes": self.notes,
                "webui_args": self.webui_args, "log": str(self.log) if self.log else None,
                "next": self.next_command() if self.complete else None}


# --- pure helpers --------------------------------------------------------------------------


def disk_verdict(free_bytes: int, backend: str) -> tuple[str, str]:
    """('ok'|'warn'|'stop', message) for the free space at the install location."""
    free_gb = free_bytes / 1024**3
    need = NEED_GB.get(backend, 8.0)
    if free_gb < need:
        return "stop", (f"only {free_gb:.1f} GB free; the {backend} stack needs about "
                        f"{need:g} GB (the full install about {RECOMMENDED_GB:g} GB plus models)")
    if free_gb < RECOMMENDED_GB:
        return "warn", (f"{free_gb:.1f} GB free: enough for the install, tight for models "
                        f"(about {RECOMMENDED_GB:g} GB plus 2-7 GB per checkpoint)")
    return "ok", f"{free_gb:.0f} GB free"


def install_block(python_cmd: str, venv_dir: str, args: list[str], constraints: Path,
                  ) -> MirrorEnv:
    """What webui-user.sh / .bat need so that the WebUI's own scripts use sdboot's
    environment, flags and pins."""
    return MirrorEnv({"python_cmd": python_cmd, "PYTHON": python_cmd, "venv_dir": venv_dir,
                      "VENV_DIR": venv_dir, "COMMANDLINE_ARGS": " ".join(args),
                      "PIP_CONSTRAINT": str(constraints)})


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "-"


# --- the run -------------------------------------------------------------------------------


@dataclass
class _Step:
    name: str
    title: str
    check: Callable[[], bool]
    run: Callable[[], str]
    commands: Callable[[], list[str]]


class InstallRun:
    """One `sdboot install` invocation: context, steps, and the record."""

    def __init__(self, opts: InstallOptions, ui: StepUI, runner: Runner,
                 gpu: GpuInfo | None = None, host: HostFacts | None = None) -> None:
        self.opts = opts
        self.ui = ui
        self.runner = runner
        self.root = _target(opts.webui_dir)
        self.state = self.root / STATE
        self.record: dict[str, Any] = read_record(self.root) if self.root.is_dir() else {}
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
        default = self.catalog.get("a1111")
        self.repo = (opts.webui_repo or self.record.get("repo")
                     or (default.repo if default else None))
        if not self.repo:
            raise SdbootError("no WebUI repository known", "give --webui-repo URL")
        known = known_for(self.catalog, self.repo)
        self.ref = opts.ref or self.record.get("ref") or (known.default_ref if known else None)
        self.env_kind = opts.env_kind or (self.record.get("env") or {}).get("kind") or "venv"
        if self.env_kind not in ("venv", "conda"):
            raise SdbootError(f"unknown --env '{self.env_kind}'", "use venv or conda")

    # -- context --------------------------------------------------------------------------
    @property
    def constraints(self) -> Path:
        return self.state / "constraints.txt"

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

    def _git_env(self) -> dict[str, str]:
        """git's insteadOf rules for sdboot's own clone (the WebUI's come with webui_env)."""
        env = plan_mirror_env(self.selection, self.table, None, None,
                              git_count_base=existing_git_count(os.environ))
        return {k: v for k, v in env.vars.items() if k.startswith("GIT_CONFIG")}

    def webui_env(self) -> dict[str, str]:
        """The environment of the WebUI's own processes: the mirror variables (env mode),
        the profile's exact stack, the constraints for every pip call, no user flags."""
        assert self.profile is not None
        lf = launch_file(self.root)
        text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
        plan = plan_mirror_env(self.selection, self.table, text, self.profile.pins(),
                               git_count_base=existing_git_count(os.environ))
        env = plan.apply_to(dict(os.environ))
        env.update(constraint_env(self.constraints))
        env["COMMANDLINE_ARGS"] = ""
        env["PYTHONNOUSERSITE"] = "1"
        if self.selection.pypi is not None:
            env["UV_INDEX_URL"] = self.selection.pypi.url
        return env

    def pip_env(self) -> dict[str, str]:
        env = dict(os.environ)
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

    def webui_args(self) -> list[str]:
        saved = self.record.get("webui_args")
        if isinstance(saved, list) and self.opts.profile is None:
            return [str(a) for a in saved]
        from sdboot.flags import webui_args

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

    # -- steps ----------------------------------------------------------------------------
    def steps(self) -> list[_Step]:
        return [
            _Step("clone", "get the WebUI", self.check_clone, self.do_clone, self.cmd_clone),
            _Step("env", f"create the Python environment ({self.env_kind})", self.check_env,
                  self.do_env, self.cmd_env),
            _Step("torch", "install the pinned torch stack", self.check_torch, self.do_torch,
                  self.cmd_torch),
            _Step("verify", self._verify_title(), self.check_verify,
                  self.do_verify, lambda: [f"{self.python()} -I <sdboot probe>"]),
            _Step("prepare", "let the WebUI prepare the rest (launch.py --exit)",
                  self.check_prepare, self.do_prepare, self.cmd_prepare),
            _Step("reverify", "verify torch is unchanged", self.check_reverify,
                  self.do_reverify, lambda: [f"{self.python()} -I <sdboot probe>"]),
            _Step("webui-user", "write webui-user.sh / webui-user.bat", self.check_user,
                  self.do_user, lambda: ["edit webui-user.sh and webui-user.bat (managed "
                                         "blocks)"]),
            _Step("record", "record the install", lambda: bool(self.record.get("complete")),
                  self.do_record, lambda: [f"write {self.root / '.sdboot/install.json'}"]),
        ]

    def _verify_title(self) -> str:
        if self.profile is not None and self.profile.backend != "cuda":
            return f"verify {self.profile.backend} torch on this machine"
        return "verify CUDA torch on this GPU"

    # clone
    def _clone_url(self) -> str:
        assert self.repo is not None
        return map_url(self.repo, self.selection.github, self.table)

    def check_clone(self) -> bool:
        if not is_webui(self.root):
            return False
        want = self.record.get("commit")
        if want and (self.root / ".git").exists():
            return bool(gitops.head_commit(self.root, self.runner, self.git) == want)
        return True

    def cmd_clone(self) -> list[str]:
        argv = [self.git, "clone"]
        if self.ref and not _HEX_REF.fullmatch(self.ref):
            argv += ["--branch", self.ref]
        return [quote([*argv, self._clone_url(), str(self.root)])]

    def do_clone(self) -> str:
        assert self.repo is not None
        partial = self.root.parent / f".{self.root.name}.sdboot-partial"
        if partial.is_symlink() or (os.path.lexists(partial) and not partial.is_dir()):
            raise SdbootError(f"{partial} (the folder sdboot clones into) is a symbolic link "
                              "or a file", "remove it (sdboot never follows a link there) "
                              "and run the command again", exit_code=2)
        if partial.exists():  # a half-made clone of an interrupted run
            remove_tree(self.root.parent, partial, "the partial clone")
        expected = pinned_commit(self.catalog, self.repo, self.ref) if self.ref else None
        hex_ref = bool(self.ref and _HEX_REF.fullmatch(self.ref))
        url = self._clone_url()
        commit = gitops.clone(url, partial, self.runner,
                              ref=None if hex_ref else self.ref,
                              expected_commit=expected or (self.ref if hex_ref else None),
                              env={**os.environ, **self._git_env()}, git=self.git,
                              on_line=self.ui.detail)
        if not is_webui(partial):
            remove_tree(self.root.parent, partial, "the partial clone")
            raise SdbootError(f"{self.repo} is not a Stable Diffusion WebUI repository "
                              "(no launch.py)", "check --webui-repo")
        if self.root.exists():
            self.root.rmdir()  # empty: checked before
        os.replace(partial, self.root)
        self.record.update({"repo": self.repo, "ref": self.ref, "commit": commit,
                            "clone_url": url})
        verified = " (pinned commit verified)" if expected else ""
        return f"{self.ref or 'default branch'} at {commit[:10]}{verified}"

    # env
    def check_env(self) -> bool:
        if not step_done(self.record, "env"):
            return False
        return self.installed() is not None

    def cmd_env(self) -> list[str]:
        if self.env_kind == "venv":
            return [quote(["python3.10", "-m", "venv", str(self.prefix())])]
        return [quote(["conda", "env", "create", "-f",
                       str(self.state / "environment.yaml"), "-p", str(self.prefix())])]

    def do_env(self) -> str:
        prefix = self.prefix()
        if os.path.lexists(prefix):
            if not self._made_by_sdboot(prefix) or prefix.is_symlink():
                raise SdbootError(
                    f"{prefix} exists and sdboot did not make it",
                    f"sdboot never deletes an environment it did not create: move it away "
                    f"(e.g. to {prefix.name}.old) and run the command again", exit_code=2)
            # a half-made (or broken) environment that sdboot made: start it again
            remove_tree(self.root, prefix, "the environment folder")
        forget_steps(self.record, ["torch", "verify", "prepare", "reverify"])
        self.record["env_pending"] = {"kind": self.env_kind, "prefix": str(prefix)}
        self.save()  # before the folder exists: a killed run knows it is sdboot's
        if self.env_kind == "venv":
            from sdboot.envs.venv import VenvEnv, find_python

            version = _python_for(self.profile)
            base = find_python(version, self.runner)
            VenvEnv(prefix, base).create(self.runner)
            python_cmd = str(base)
        else:
            from sdboot.envs.conda import CondaEnv, derive_environment

            exe = next((e for e in (shutil.which("conda"), shutil.which("mamba"),
                                    shutil.which("micromamba")) if e), None)
            if exe is None:
                raise SdbootError("conda, mamba or micromamba is not on PATH",
                                  "install Miniforge, or use --env venv", exit_code=1)
            source = self.root / "environment-wsl2.yaml"
            text = source.read_text(encoding="utf-8") if source.is_file() else \
                "name: automatic\ndependencies:\n  - python=3.10\n  - pip\n"
            channel = self.selection.conda.url if self.selection.conda else None
            env_file = self.state / "environment.yaml"
            atomic_write(env_file, derive_environment(text, channel)[0].encode(),
                         root=self.root)
            CondaEnv(exe, env_file, prefix=prefix).create(self.runner)
            python_cmd = str(env_python(prefix))
        self.record.pop("env_pending", None)
        self.record["env"] = {"kind": self.env_kind, "prefix": str(prefix),
                              "python": str(env_python(prefix)), "base_python": python_cmd}
        return str(prefix)

    # torch
    def check_torch(self) -> bool:
        assert self.profile is not None
        found = self.installed()
        if not found:
            return False
        want = {"torch": self.profile.torch, "torchvision": self.profile.torchvision}
        if self.profile.xformers:
            want["xformers"] = self.profile.xformers
        return all(found.get(k) == v for k, v in want.items()) and \
            self.constraints.is_file() and \
            self.constraints.read_text() == render_constraints(self.profile)

    def cmd_torch(self) -> list[str]:
        assert self.profile is not None
        installer = choose_installer()
        return [quote(c) for c in plan_stack_install(self.profile, self.python(), installer,
                                                     self.constraints, self.wheel_source())]

    def do_torch(self) -> str:
        assert self.profile is not None
        forget_steps(self.record, ["verify", "prepare", "reverify"])
        installer = choose_installer()
        install_stack(self.profile, self.python(), self.constraints, self.runner, installer,
                      self.wheel_source(), env=self.pip_env(), on_progress=self.ui.detail)
        self.record["installer"] = installer.kind
        return f"torch {self.profile.torch} with {installer.kind}"

    # verify / reverify
    def _stack_fingerprint(self) -> str:
        return _fingerprint(self.installed())

    def check_verify(self) -> bool:
        done = step_done(self.record, "verify") or {}
        return bool(done) and done.get("fingerprint") == self._stack_fingerprint()

    def _verify(self) -> str:
        from sdboot.gpu import detect_gpu, detect_host
        from sdboot.verify import assess_stack, run_probe

        assert self.profile is not None
        self.host = self.host or detect_host()
        self.gpu = self.gpu or detect_gpu(self.runner, self.host)
        probe = run_probe(self.python(), self.runner)
        verdict = assess_stack(probe, self.gpu, self.profile, str(self.python()), pinned=True)
        if not verdict.ok:
            first = next(f for f in verdict.findings if f.severity == "error")
            fix = ""
            if first.fix is not None and first.fix.commands:
                fix = "; fix: " + " && ".join(quote(c) for c in first.fix.commands)
            raise SdbootError(f"verify failed: [{first.code}] {first.message}",
                              (first.fix.summary if first.fix else "see sdboot verify") + fix,
                              exit_code=1)
        return verdict.summary

    def do_verify(self) -> str:
        summary = self._verify()
        mark_step(self.record, "verify", fingerprint=self._stack_fingerprint())
        return summary

    def check_reverify(self) -> bool:
        done = step_done(self.record, "reverify") or {}
        return bool(done) and done.get("fingerprint") == self._stack_fingerprint()

    def do_reverify(self) -> str:
        assert self.profile is not None
        found = self.installed() or {}
        if found.get("torch") != self.profile.torch or \
                found.get("torchvision") != self.profile.torchvision:
            forget_steps(self.record, ["torch", "verify"])
            raise SdbootError(
                f"[torch-drift] the WebUI's setup replaced torch {self.profile.torch} with "
                f"{found.get('torch')} (torchvision {found.get('torchvision')})",
                "run sdboot install again: it reinstalls the pinned stack", exit_code=1)
        summary = self._verify()
        mark_step(self.record, "reverify", fingerprint=self._stack_fingerprint())
        return summary

    # prepare
    def _prepare_fingerprint(self) -> str:
        lf = launch_file(self.root)
        return _fingerprint(_sha_file(lf) if lf else "-",
                            _sha_file(self.root / "requirements_versions.txt"),
                            self.selection.chosen())

    def check_prepare(self) -> bool:
        done = step_done(self.record, "prepare") or {}
        return bool(done) and done.get("fingerprint") == self._prepare_fingerprint()

    def _prepare_argv(self) -> list[str]:
        assert self.profile is not None
        argv = [str(self.python()), "launch.py", "--exit"]
        if self.profile.backend != "cuda":  # the WebUI's own CUDA test would stop it
            argv.append("--skip-torch-cuda-test")
        return argv

    def cmd_prepare(self) -> list[str]:
        return [f"(cd {quote([str(self.root)])} && {quote(self._prepare_argv())})"]

    def do_prepare(self) -> str:
        res = self.runner.stream(self._prepare_argv(), timeout=PREPARE_TIMEOUT_S,
                                 env=self.webui_env(), cwd=self.root, on_line=self.ui.detail)
        if not res.ok:
            raise SdbootError(f"the WebUI's preparation (launch.py --exit) failed: "
                              f"{res.tail(4)}", "see the log; network errors: try "
                              "--mirror auto", exit_code=1)
        self._check_repositories()
        mark_step(self.record, "prepare", fingerprint=self._prepare_fingerprint())
        return "repositories and requirements in place"

    def _check_repositories(self) -> None:
        """Every repository the WebUI cloned must be at one of its pinned commits: a clone
        through a mirror that served other code is an error."""
        lf = launch_file(self.root)
        if lf is None:
            return
        pinned = {v.lower() for k, v in parse_env_defaults(
            lf.read_text(encoding="utf-8", errors="replace")).items()
            if k.endswith(("_COMMIT_HASH", "_HASH")) and v}
        repos = self.root / "repositories"
        if not pinned or not repos.is_dir():
            return
        for repo in sorted(p for p in repos.iterdir() if (p / ".git").exists()):
            head = gitops.head_commit(repo, self.runner, self.git)
            if head is not None and head.lower() not in pinned:
                raise SdbootError(f"repositories/{repo.name} is at {head}, not at a commit "
                                  "the WebUI pins", "a mirror served other code: delete that "
                                  "folder and install again with another mirror", exit_code=1)

    # webui-user
    def _user_files(self) -> list[UserFile]:
        assert self.profile is not None
        env = self.record.get("env") or {}
        venv_dir = "venv" if self.env_kind == "venv" and self.prefix() == self.root / "venv" \
            else ("-" if self.env_kind == "conda" else str(self.prefix()))
        python_cmd = env.get("base_python") or str(self.python())
        block = install_block(python_cmd, venv_dir, self.webui_args(), self.constraints)
        lf = launch_file(self.root)
        text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
        mirror = plan_mirror_env(self.selection, self.table, text, self.profile.pins())
        return [plan_user_file(self.root, name, shell,
                               [(INSTALL_BLOCK, block), (MIRROR_BLOCK, mirror)])
                for name, shell in (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))]

    def check_user(self) -> bool:
        if not step_done(self.record, "webui-user"):
            return False
        return all(uf.exists and not uf.changed for uf in self._user_files())

    def do_user(self) -> str:
        self.notes.extend(write_user_files(self.root, self._user_files()))
        self.record["webui_args"] = self.webui_args()
        return "COMMANDLINE_ARGS=" + (" ".join(self.webui_args()) or "(none)")

    def do_record(self) -> str:
        assert self.profile is not None
        self.record["complete"] = True
        self.record["versions"] = self.installed()
        return str(self.root / ".sdboot" / "install.json")

    # -- preflight ------------------------------------------------------------------------
    def choose_profile(self) -> None:
        from sdboot.gpu import detect_gpu, detect_host
        from sdboot.profiles import get_profile, load_profiles, resolve_profile
        from sdboot.webui import detect_webui

        profiles = load_profiles()
        wanted = self.opts.profile or self.record.get("profile")
        if wanted:
            self.profile = get_profile(profiles, wanted)
            if self.opts.profile is None:
                return
        self.host = self.host or detect_host()
        self.gpu = self.gpu or detect_gpu(self.runner, self.host)
        webui: WebuiFacts | None = None
        if is_webui(self.root):
            webui = detect_webui(self.root, self.runner)
        else:
            flavor = "forge" if "forge" in (self.repo or "").lower() else None
            webui = parse_webui_version(flavor or (self.ref or "1.10.1")) if (
                flavor or (self.ref and re.fullmatch(r"v?\d+\.\d+\.\d+(-\w+)?", self.ref))) \
                else None
        if webui is not None:
            self.record["webui_version"] = webui.version
        res = resolve_profile(profiles, self.gpu, self.host, _python_for(None), webui,
                              self.opts.profile)
        if res.profile is None:
            raise SdbootError("no torch profile fits this machine", "; ".join(res.advice),
                              exit_code=1)
        self.profile = res.profile
        for reason in res.reasons[:2]:
            self.notes.append(reason)

    def choose_mirrors(self, pending: list[str]) -> None:
        spec = self.opts.mirror
        saved = self.record.get("mirror") or {}
        if spec is None and saved:
            self.selection = webui_selection(self.root, self.table)
            return
        if spec == "auto":
            from sdboot.health import auto_select

            self.ui.note("checking GitHub, the package index and the torch index ...")
            self.selection, reasons, _ = auto_select(
                self.table, variant=self.profile.variant if self.profile else None)
            for reason in reasons:
                self.ui.note(f"mirror: {reason}")
            return
        self.selection = select(self.table, spec, self.opts.insecure)
        if "clone" in pending or "prepare" in pending:
            self._reachability()

    def _reachability(self) -> None:
        """Warn early when an upstream without a mirror cannot be reached; stop when GitHub
        is unreachable, since nothing else can work then."""
        from sdboot.health import plan_candidates, run_health

        groups = tuple(g for g in ("github", "pypi", "torch")
                       if self.selection.get(g) is None)
        if not groups:
            return
        variant = self.profile.variant if self.profile else None
        cands = plan_candidates(self.table, groups, variant=variant)
        cands = [c for c in cands if c.kind == "upstream"]
        for health in run_health(cands, 4.0, self.runner):
            if health.alive:
                continue
            group = health.candidate.group
            if group == "github":
                raise SdbootError(f"GitHub cannot be reached ({health.error})",
                                  "use a mirror: --mirror auto (or --mirror cn in mainland "
                                  "China); see sdboot mirror test", exit_code=1)
            self.notes.append(f"{group}: the upstream did not answer ({health.error}); "
                              "if the install fails there, try --mirror auto")

    def preflight(self) -> None:
        git = gitops.detect_git(self.runner)
        if git.exe is None:
            raise SdbootError("git is not installed (or not on PATH)",
                              "install git (Windows: winget install Git.Git) and run again",
                              exit_code=1)
        self.git = git.exe
        if git.version and not git.config_env:
            self.notes.append(f"git {'.'.join(map(str, git.version))} is older than 2.31: "
                              "mirrors reach the WebUI's own clones, not extension clones")
        where = _existing_parent(self.root)
        if not os.access(where, os.W_OK):
            raise SdbootError(f"cannot write to {where}", "choose a folder you own, e.g. "
                              "under your home folder")
        assert self.profile is not None
        verdict, message = disk_verdict(shutil.disk_usage(where).free, self.profile.backend)
        if verdict == "stop":
            raise SdbootError(f"not enough disk space at {where}: {message}",
                              "free some space or install elsewhere", exit_code=1)
        if verdict == "warn":
            self.notes.append(message)

    # -- the whole thing -------------------------------------------------------------------
    def run(self) -> InstallReport:
        _check_target(self.root)
        if self.opts.dry_run:
            return self._run_locked()
        lock = self.root.parent / f".{self.root.name}.sdboot.lock"
        with exclusive_lock(lock) as held:
            if not held:
                raise SdbootError(f"another sdboot install is running for {self.root}",
                                  "wait for it to finish (or stop it), then run again",
                                  exit_code=1)
            keep_on_interrupt(KEPT_RESUME)  # Ctrl-C from here: the hint says what is kept
            report = self._run_locked()
            lock.unlink(missing_ok=True)  # only after success: no clutter beside the WebUI
            return report

    def _run_locked(self) -> InstallReport:
        steps = self.steps()
        if self.record.get("complete") and self._quick_check(steps):
            return self._report([StepResult(s.name, s.title, "skipped") for s in steps],
                                nothing_to_do=True)
        self.choose_profile()
        steps = self.steps()  # the titles know the profile now
        pending = [s.name for s in steps if not self._done(s)]
        self.preflight()
        self.choose_mirrors(pending)
        assert self.profile is not None
        self.ui.note(f"WebUI: {self.root}  ({self.repo} {self.ref or ''})".rstrip())
        self.ui.note(f"profile: {self.profile.name} (torch {self.profile.torch})")
        chosen = self.selection.chosen()
        self.ui.note("mirrors: " + (", ".join(f"{g}={n}" for g, n in chosen.items())
                                    or "none (upstreams)"))
        for note in self.notes:
            self.ui.note(note, "yellow")
        self.notes.clear()
        todo = [s.name for s in steps if not self._done(s)] \
            if self.confirm is not None and not self.opts.dry_run else []
        if todo and self.confirm is not None and \
                not self.confirm(f"Run {len(todo)} step(s) ({', '.join(todo)})?"):
            raise SdbootError("install cancelled; nothing was changed",
                              "run it again (add --yes to skip this question)", exit_code=1)
        self.record.update({"profile": self.profile.name, "mirror": self.selection.to_json()})
        results: list[StepResult] = []
        for i, step in enumerate(steps, start=1):
            self.ui.begin(i, len(steps), step.title)
            started = time.monotonic()
            if self._done(step):
                self.ui.end("skipped", 0.0, "already done")
                results.append(StepResult(step.name, step.title, "skipped", note="already done"))
                continue
            if self.opts.dry_run:
                commands = step.commands()
                self.ui.end("planned", 0.0, "; ".join(commands))
                results.append(StepResult(step.name, step.title, "planned", commands=commands))
                continue
            try:
                note = step.run()
                if step.name in ("env", "torch", "prepare"):
                    self._installed = None  # the environment changed: ask again
            except BaseException:
                self.ui.end("failed", time.monotonic() - started)
                self.save()
                raise
            if step.name not in ("verify", "reverify", "prepare"):
                mark_step(self.record, step.name)
            self.save()
            elapsed = time.monotonic() - started
            self.ui.end("done", elapsed, note)
            results.append(StepResult(step.name, step.title, "done", elapsed, note))
        return self._report(results, nothing_to_do=False)

    def _done(self, step: _Step) -> bool:
        """A step is done when its check holds; the checks of steps that leave partial
        state behind (env, verify, prepare, ...) also need the record's word for it."""
        if step.name != "clone" and not self.root.is_dir():
            return False
        try:
            return step.check()
        except SdbootError:
            return False

    def _quick_check(self, steps: list[_Step]) -> bool:
        """A complete install: every step still holds, without the network."""
        from sdboot.profiles import get_profile, load_profiles

        if self.opts.profile and self.opts.profile != self.record.get("profile"):
            return False
        if self.opts.env_kind and self.opts.env_kind != (self.record.get("env") or {}).get(
                "kind"):
            return False
        if self.opts.mirror is not None and self.opts.mirror != "auto":
            try:
                wanted = select(self.table, self.opts.mirror, self.opts.insecure).chosen()
            except SdbootError:
                return False
            recorded = {g: n for g, n in (self.record.get("mirror") or {}).items()
                        if g != "label" and n}
            if wanted != recorded:
                return False
        try:
            self.profile = get_profile(load_profiles(), str(self.record.get("profile")))
        except SdbootError:
            return False
        self.selection = webui_selection(self.root, self.table)
        return all(self._done(s) for s in steps)

    def _report(self, results: list[StepResult], nothing_to_do: bool) -> InstallReport:
        complete = bool(self.record.get("complete")) and not self.opts.dry_run
        return InstallReport(
            self.root, results, self.profile.name if self.profile else None,
            str(self.python()) if complete else None, self.selection.to_json(), complete,
            nothing_to_do, self.runner.log_path, list(self.notes),
            [str(a) for a in self.record.get("webui_args") or []])


def _python_for(profile: Profile | None) -> str:
    """The WebUI's tested Python (3.10) unless the profile cannot use it."""
    from packaging.specifiers import SpecifierSet

    if profile is not None and profile.python and "3.10" not in SpecifierSet(profile.python):
        for candidate in ("3.11", "3.12", "3.9"):
            if candidate in SpecifierSet(profile.python):
                return candidate
    return "3.10"


def _target(path: Path) -> Path:
    path = path.expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _check_target(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise SdbootError(f"{root} is a file, not a folder", "give a folder for the WebUI")
    if root.is_dir() and not is_webui(root) and any(root.iterdir()):
        raise SdbootError(f"{root} is not empty and holds no WebUI",
                          "give a new or empty folder, or an existing WebUI checkout")
