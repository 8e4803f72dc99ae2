"""The one funnel for child processes: argv lists only (never a shell), a timeout on
every call, an optional log file that records each command and its output, and a
dry-run mode that records instead of running. Nothing else in sdboot imports subprocess.
What goes into the log is masked (sdboot.io.mask): the child gets the real arguments."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from sdboot.io.mask import mask, mask_argv


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int  # 127: not found / could not start; 124: timed out
    stdout: str
    stderr: str
    elapsed_s: float
    timed_out: bool = False
    error: str | None = None  # why it could not start

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        text = (self.stderr.strip() or self.stdout.strip() or self.error or "").splitlines()
        return "\n".join(text[-lines:])


def which(name: str, path: str | None = None) -> str | None:
    return shutil.which(name, path=path)


def quote(argv: Sequence[str]) -> str:
    """One shell-quoted line, for logs and for showing users what runs."""
    if sys.platform == "win32":
        return subprocess.list2cmdline(list(argv))
    return shlex.join(argv)


def shown(argv: Sequence[str]) -> str:
    """quote(argv) with every credential masked: for logs and screens."""
    return mask(quote(mask_argv([str(a) for a in argv])))


def _merged_env(env: Mapping[str, str] | None, unset: Sequence[str]) -> dict[str, str] | None:
    if env is None and not unset:
        return None
    merged = dict(os.environ)
    if env:
        merged.update(env)
    for name in unset:
        merged.pop(name, None)
    return merged


class Runner:
    """Runs commands; one instance per command invocation carries the log and dry-run flag."""

    def __init__(self, log_path: Path | None = None, dry_run: bool = False) -> None:
        self.log_path = log_path
        self.dry_run = dry_run
        self.planned: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    # -- logging -----------------------------------------------------------------------
    def _log(self, text: str) -> None:
        if self.log_path is None:
            return
        with self._lock:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8", errors="replace") as fh:
                text = mask(text)
                fh.write(text if text.endswith("\n") else text + "\n")

    # -- capture mode: short commands whose output we parse ----------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        unset_env: Sequence[str] = (),
        cwd: str | Path | None = None,
        input_text: str | None = None,
    ) -> RunResult:
        args = tuple(str(a) for a in argv)
        self._log(f"$ {shown(args)}")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                args,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                env=_merged_env(env, unset_env),
                cwd=cwd,
                input=input_text,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            err = exc.stderr if isinstance(exc.stderr, str) else ""
            self._log(f"[timed out after {timeout:g} s]")
            return RunResult(args, 124, out, err, time.monotonic() - start, timed_out=True,
                             error=f"timed out after {timeout:g} s")
        except OSError as exc:
            self._log(f"[could not start: {exc}]")
            return RunResult(args, 127, "", "", time.monotonic() - start, error=str(exc))
        result = RunResult(args, proc.returncode, proc.stdout, proc.stderr,
                           time.monotonic() - start)
        self._log(proc.stdout + proc.stderr + f"[exit {proc.returncode}]")
        return result

    # -- streaming mode: long commands (installs), output to the log and a callback ----
    def stream(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        unset_env: Sequence[str] = (),
        cwd: str | Path | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run a long command, feeding each output line to on_line (progress) and the log.
        In dry-run mode the command is only recorded."""
        args = tuple(str(a) for a in argv)
        if self.dry_run:
            self.planned.append(args)
            return RunResult(args, 0, "", "", 0.0)
        self._log(f"$ {shown(args)}")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=_merged_env(env, unset_env),
                cwd=cwd,
            )
        except OSError as exc:
            self._log(f"[could not start: {exc}]")
            return RunResult(args, 127, "", "", time.monotonic() - start, error=str(exc))
        lines: list[str] = []
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        log_fh: IO[str] | None = None
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_fh = self.log_path.open("a", encoding="utf-8", errors="replace")
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if log_fh is not None:
                    with self._lock:  # concurrent commands (clones) share the log
                        log_fh.write(mask(line))
                        log_fh.flush()
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
            if log_fh is not None:
                with self._lock:
                    log_fh.write(f"[exit {proc.returncode}]\n")
                log_fh.close()
        elapsed = time.monotonic() - start
        timed_out = elapsed >= timeout and proc.returncode != 0
        return RunResult(args, 124 if timed_out else proc.returncode, "".join(lines), "",
                         elapsed, timed_out=timed_out,
                         error=f"timed out after {timeout:g} s" if timed_out else None)


def exec_replace(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> NoReturn:
    """Replace this process with argv (POSIX): signals and the exit code then belong to it."""
    os.chdir(cwd)
    os.execve(argv[0], list(argv), dict(env))
