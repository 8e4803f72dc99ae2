"""Human renderings (rich) of result objects. Renderers never probe: they only format.
URLs and commands are masked (sdboot.io.mask) before rich lays them out, so that a credential
is never split by a line wrap; the console's stream masks everything once more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sdboot.cli.terminal import say, say_command
from sdboot.i18n import _, local
from sdboot.io.datafile import doc_link
from sdboot.io.mask import mask, mask_argv
from sdboot.io.runner import quote
from sdboot.values import GpuInfo, Profile, Resolution

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sdboot.doctor import DoctorReport
    from sdboot.mirrors.apply import ApplyResult
    from sdboot.mirrors.health import Health
    from sdboot.mirrors.table import MirrorTable, Selection
    from sdboot.stack.verdict import Verdict
    from sdboot.values import Finding


def _mib(value: int | None) -> str:
    if value is None:
        return "?"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def render_gpu(con: Console, info: GpuInfo) -> None:
    if not info.gpus:
        con.print(_("No GPU found: sdboot will use the CPU profile (slow, but it works)."))
    else:
        con.print(f"[bold]{info.vendor.value.upper()}[/bold] "
                  + _("via {source}  driver {version}").format(
                      source=info.source.value, version=info.driver_version or "?")
                  + ("  " + _("(supports CUDA {version})").format(
                      version=info.cuda_driver_version)
                     if info.cuda_driver_version else ""))
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("GPU")
        table.add_column(_("memory"), justify="right")
        table.add_column(_("compute capability"), justify="center")
        for dev in info.gpus:
            table.add_row(str(dev.index), dev.name, _mib(dev.memory_total_mib),
                          dev.compute_capability or "-")
        con.print(table)
    for note in info.notes:
        con.print("[dim]" + _("note: {note}").format(note=local(note)) + "[/dim]")


def render_profiles(con: Console, profiles: list[Profile]) -> None:
    """Two lines a profile (the pins, then what it is for), so that 80 columns and a pipe
    both read well; the caller sorts them."""
    width = max((len(p.name) for p in profiles), default=0)
    under = _under(con, width + 2, 0)
    for p in profiles:
        mark = " " + _("(yours)") if p.source == "user" else ""
        pins = Text(f"{p.name:<{width}}", style="bold")
        pins.append(f"  torch {p.torch}  xformers {p.xformers or '-'}  python {p.python}")
        say(con, pins, hang=under)
        say(con, Text(local(p.description) + mark, style="dim"), indent=under, hang=under)
    say(con, Text(_("details: sdboot profiles show NAME; your own: {doc}").format(
        doc=doc_link("gpu-and-profiles")), style="dim"))


def render_profile(con: Console, p: Profile) -> None:
    con.print(f"[bold]{p.name}[/bold]  {p.description}")
    rows = [
        ("torch", p.torch), ("torchvision", p.torchvision), ("xformers", p.xformers or "-"),
        (_("backend"), p.backend + (f" (CUDA {p.cuda})" if p.cuda else "")),
        (_("wheels from"), mask(p.index_url or _("the default package index"))
         + {"extra": " (--extra-index-url)", "index": " (--index-url)"}.get(p.index_mode, "")),
        (_("GPU architectures"), ", ".join(p.arch) + (" " + _("(+PTX on {archs})").format(
            archs=", ".join(p.ptx)) if p.ptx else "") if p.arch else "-"),
        ("Python", p.python),
        ("WebUI", ", ".join(p.webui) or _("any")),
        (_("platforms"), ", ".join(p.platforms)),
        (_("minimum driver"), ", ".join(f"{k} {v}" for k, v in p.min_driver.items()) or "-"),
        (_("file"), p.path),
    ]
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    con.print(table)
    for note in p.notes:
        con.print(_("note: {note}").format(note=local(note)))


def render_resolution(con: Console, res: Resolution, explain: bool) -> None:
    if res.profile is not None:
        p = res.profile
        con.print(f"[bold green]{p.name}[/bold green]: torch {p.torch}, torchvision "
                  f"{p.torchvision}, xformers {p.xformers or '-'}")
        con.print("  " + _("from {index}").format(
            index=mask(p.index_url or _("the default package index"))), markup=False)
        for reason in res.reasons:
            con.print(f"  - {local(reason)}")
    if explain or res.profile is None:
        if res.rejected:
            con.print("[bold]" + _("rejected:") + "[/bold]")
            for rej in res.rejected:
                con.print(f"  {rej.profile}: {local(rej.why)}")
    elif res.rejected:
        con.print("[dim]" + _("{count} other profiles do not fit; --explain says why").format(
            count=len(res.rejected)) + "[/dim]")


MARKS = {"error": "[red]✗[/red]", "warning": "[yellow]![/yellow]", "info": "[dim]i[/dim]"}


def render_verdict(con: Console, verdict: Verdict, doc: dict[str, Any]) -> None:
    mark = "[green]✓[/green] " if verdict.ok else "[red]✗[/red] "
    say(con, Text.from_markup(mark) + mask(local(verdict.summary)))
    say(con, Text(f"python {doc['python']}" + ("; " + _("expected profile {name}").format(
        name=doc["expected_profile"]) if doc["expected_profile"] else ""), style="dim"),
        indent=2)
    for finding in verdict.findings:
        head = Text.from_markup(f"{MARKS.get(str(finding.severity), '-')} ")
        head.append(finding.code, style="bold")
        say(con, head + ": " + mask(local(finding.message)), hang=4)
        if finding.fix is not None:
            say(con, Text(_("fix: {summary}").format(summary=mask(local(finding.fix.summary)))),
                indent=4, hang=6)
            for argv in finding.fix.commands:
                say_command(con, Text("$ "), _command(argv, lambda s: s), indent=6, hang=10)
    if not verdict.ok:
        say(con, Text(_("The WebUI cannot run on this machine with this environment; "
                        "apply the fix above, then run sdboot verify again.")))


# --- mirrors ---------------------------------------------------------------------------------


def _under(con: Console, column: int, indent: int) -> int:
    """The hanging indent that lines continuation up under `column`, where the terminal
    leaves room for it; else a short one."""
    return column if con.width - column >= 30 else indent + 4


def render_mirror_list(con: Console, table: MirrorTable) -> None:
    from sdboot.mirrors.table import GROUPS

    width = max((len(m.name) for m in table.mirrors.values()), default=8)
    column = 2 + width + 2  # where the URLs start
    for group in GROUPS:
        mirrors = table.of_group(group)
        if not mirrors:
            continue
        con.print(f"[bold]{group}[/bold]")
        for m in mirrors:
            extra = [str(m.kind)] + ([m.region] if m.region else [])
            if m.source == "user":
                extra.append(_("yours"))
            line = f"{m.name:<{width}}  {mask(m.url)}  ({', '.join(extra)})"
            if m.dead_since:
                line += "  " + _("dead since {date}").format(date=m.dead_since)
            say(con, Text(line, style="dim" if m.dead_since else ""), indent=2,
                hang=_under(con, column, 2))
            if m.notes:
                under = _under(con, column, 2)
                say(con, Text(mask(m.notes), style="dim"), indent=under, hang=under)
    if table.presets:
        con.print("\n" + _("Presets (--mirror NAME):"))
        for name, choice in table.presets.items():
            say(con, Text(f"{name}: " + ", ".join(f"{g}={n}" for g, n in choice.items())),
                indent=2, hang=4)
    if table.substitutions:
        con.print("\n" + _("Repositories that are gone, and their replacements:"))
        for sub in table.substitutions:
            say(con, Text(f"{mask(sub.from_url)} -> {mask(sub.to_url)}"), indent=2, hang=4)


def render_health(con: Console, results: list[Health], elapsed_s: float, deadline_s: float,
                  reasons: list[str]) -> None:
    from sdboot.mirrors.table import GROUPS

    for group in GROUPS:
        mine = [h for h in results if h.candidate.group == group]
        if not mine:
            continue
        con.print(f"[bold]{group}[/bold]")
        for h in mine:
            c = h.candidate
            line = Text.from_markup("[green]✓[/green] " if h.alive else "[red]✗[/red] ")
            if h.alive:
                line.append(f"{c.name:<16} {h.latency_ms:7.0f} ms     {mask(c.url)}")
            else:
                line.append(f"{c.name:<16} {mask(c.url)}  ({mask(str(h.error))})")
            say(con, line, indent=2, hang=_under(con, 2 + 2 + 17, 2))
    con.print("\n" + _("Tested {count} candidates in {elapsed:.1f} s (deadline {deadline:g} s)."
                       ).format(count=len(results), elapsed=elapsed_s, deadline=deadline_s))
    for reason in reasons:
        say(con, Text(_("auto would choose: {reason}").format(reason=local(reason))))
    if not reasons:
        con.print(_("auto would choose: the upstreams (they answer well)."))


def render_apply(con: Console, result: ApplyResult, sel: Selection, dry_run: bool) -> None:
    if dry_run:
        if result.diff:
            con.print(mask(result.diff.rstrip("\n")), markup=False, highlight=False,
                      soft_wrap=True)
        con.print(_("(dry run: nothing changed; {count} file(s) would change)").format(
            count=len(result.files)))
        return
    chosen = sel.chosen()
    picked = ", ".join(f"{g}={n}" for g, n in chosen.items()) or _("none (upstreams)")
    if result.mode == "rewrite":
        if result.files and result.urls:
            con.print(_("Rewrote {count} string(s) with GitHub URLs in {file} through "
                        "{mirrors}.").format(count=result.urls, file=result.files[0],
                                             mirrors=picked), markup=False)
            con.print("[yellow]warning:[/yellow] " + local(result.notes[0]))
            for note in result.notes[1:]:
                con.print(_("note: {note}").format(note=mask(local(note))), markup=False,
                          soft_wrap=True)
        else:
            con.print(_("{file}: already rewritten this way; nothing to do.").format(
                file=result.files[0] if result.files else _("the launch file")), markup=False)
        return
    if result.files:
        con.print(_("Mirrors {mirrors} written to {files} (a block between sdboot's markers)."
                    ).format(mirrors=picked, files=", ".join(result.files)), markup=False)
    else:
        con.print(_("Mirrors {mirrors}: webui-user files already up to date.").format(
            mirrors=picked), markup=False)
    if result.env is not None:
        for name, value in result.env.vars.items():
            con.print(mask(f"  {name}={value}"), markup=False, highlight=False, soft_wrap=True)
    for note in result.notes:
        con.print(_("note: {note}").format(note=mask(local(note))), markup=False,
                  soft_wrap=True)
    con.print(_("Undo with: {command}").format(
        command="sdboot mirror revert " + quote([str(result.root)])), markup=False,
        soft_wrap=True)


def render_mirror_status(con: Console, doc: dict[str, Any]) -> None:
    con.print(_("WebUI {dir}  (launch file {file})").format(dir=doc["webui"],
                                                          file=doc["launch_file"]),
              markup=False, soft_wrap=True)
    rw = doc.get("rewrite")
    if rw:
        con.print(_("rewrite: {file} through {mirror} ({prefix}), {count} string(s): {state}"
                    ).format(file=rw["file"], mirror=rw["mirror"], prefix=mask(rw["prefix"]),
                             count=rw["urls"], state=rw["state"]), markup=False,
                  soft_wrap=True)
    elif doc.get("hand_rewrites"):
        con.print(_("rewrite: {count} proxied GitHub URL(s) not written by sdboot (an old "
                    "hand edit?), e.g.").format(count=len(doc["hand_rewrites"])),
                  style="yellow", markup=False)
        con.print(f"  {mask(doc['hand_rewrites'][0])}", markup=False, soft_wrap=True)
        con.print("  " + _("`sdboot mirror revert DIR` removes them."), markup=False)
    else:
        con.print(_("rewrite: none (the launch file has its upstream URLs)"))
    env = doc.get("env")
    if env:
        con.print(_("env: managed block in {files}").format(
            files=", ".join(env["files"]) or _("(no file)")), markup=False)
        for name, value in (env.get("vars") or {}).items():
            con.print(mask(f"  {name}={value}"), markup=False, highlight=False, soft_wrap=True)
    else:
        con.print(_("env: none"))
    for problem in doc.get("problems", []):
        say(con, Text(_("problem:") + " ", style="yellow") + mask(local(problem)))


# --- doctor ----------------------------------------------------------------------------------

_STATUS_MARK = {"pass": "[green]✓[/green]", "warn": "[yellow]![/yellow]",
                "fail": "[red]✗[/red]", "skip": "[dim]-[/dim]", "crash": "[red]✗[/red]"}
_SEVERITY = {"error": "[red]error[/red]", "warning": "[yellow]warning[/yellow]",
             "info": "[blue]info[/blue]"}


def _command(argv: Sequence[str], paths: Callable[[str], str]) -> list[str]:
    """A command as its shell-quoted arguments, credentials and (--mask-paths) paths
    masked, one string per argument (a terminal breaks the line between them only)."""
    return [paths(quote([arg])) for arg in mask_argv([str(a) for a in argv])]


def render_doctor(con: Console, report: DoctorReport,
                  paths: Callable[[str], str] = lambda s: s) -> None:
    """One line a check, one a finding, one its fix; on a terminal each broken between
    words with its continuation lines indented under its text, into a pipe each whole.
    `paths` is --mask-paths' masker; credentials are masked before the layout."""

    def text(value: str) -> str:
        return paths(mask(value))

    if report.before is not None:
        for fix in report.fixes_run:
            mark = "[green]✓[/green]" if fix["ok"] else "[red]✗[/red]"
            say_command(con, Text.from_markup(f"{mark} ") + _("fixed [{code}]: ").format(
                code=fix["code"]), _command(fix["command"], paths), hang=4)
            if not fix["ok"]:
                say(con, Text(text(fix["tail"]), style="dim"), indent=4)
        con.print(_("After the fixes:"), style="bold")
    width = max((cell_len(r.title) for r in report.results), default=10)
    column = 2 + width + 2 + 8 + 2  # where a check's summary starts
    for res in report.results:
        head = Text.from_markup(f"{_STATUS_MARK[str(res.status)]} ")
        head.append(res.title + " " * (width - cell_len(res.title)) + "  ")
        head.append(f"{res.elapsed_ms:5.0f} ms", style="dim")
        say(con, head + "  " + text(local(res.summary)),
            hang=column if con.width - column >= 30 else 4)
        for f in res.findings:
            line = Text.from_markup(f"{_SEVERITY[str(f.severity)]} [bold]{f.code}[/bold]: ")
            say(con, line + text(local(f.message)), indent=4, hang=6)
            if f.fix is None:
                continue
            if f.fix.commands:
                label = _("fix (--fix runs it):") if f.fix.automatic else _("fix:")
                say_command(con, Text(label + " ", style="dim"),
                            _command(f.fix.commands[0], paths), indent=6, hang=10)
            else:
                say(con, Text(_("fix:") + " ", style="dim") + text(local(f.fix.summary)),
                    indent=6, hang=8)
    s = report.summary
    crashed = _(", {count} check(s) crashed").format(count=s.crashed) if s.crashed else ""
    tail = _("; run sdboot doctor --fix to apply {count}").format(count=s.fixable) \
        if s.fixable and report.before is None else ""
    style = "red" if s.errors else ("yellow" if s.warnings else "green")
    say(con, Text(_("{errors} error(s), {warnings} warning(s), {fixable} fixable").format(
        errors=s.errors, warnings=s.warnings, fixable=s.fixable) + f"{crashed}{tail}",
        style=style))
    if s.errors or s.warnings:
        say(con, Text(_("Every code is explained in:"), style="dim"))
        say(con, Text(text(doc_link("troubleshooting"))), indent=2)  # --mask-paths too


def render_fix_plan(con: Console, plan: list[tuple[Finding, tuple[tuple[str, ...], ...]]],
                    ) -> None:
    con.print(_("Fixes to run:"), style="bold")
    for finding, commands in plan:
        for argv in commands:
            say_command(con, Text(f"[{finding.code}] "), _command(argv, lambda s: s),
                        indent=2, hang=6)
