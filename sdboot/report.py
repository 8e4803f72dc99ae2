"""Human renderings (rich) of result objects. Renderers never probe: they only format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from sdboot.model import GpuInfo, Profile, Resolution
from sdboot.runner import quote

if TYPE_CHECKING:
    from sdboot.verify import Verdict


def _mib(value: int | None) -> str:
    if value is None:
        return "?"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def render_gpu(con: Console, info: GpuInfo) -> None:
    if not info.gpus:
        con.print("No GPU found: sdboot will use the CPU profile (slow, but it works).")
    else:
        con.print(f"[bold]{info.vendor.value.upper()}[/bold] via {info.source.value}"
                  f"  driver {info.driver_version or '?'}"
                  + (f"  (supports CUDA {info.cuda_driver_version})"
                     if info.cuda_driver_version else ""))
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("GPU")
        table.add_column("memory", justify="right")
        table.add_column("compute capability", justify="center")
        for dev in info.gpus:
            table.add_row(str(dev.index), dev.name, _mib(dev.memory_total_mib),
                          dev.compute_capability or "-")
        con.print(table)
    for note in info.notes:
        con.print(f"[dim]note: {note}[/dim]")


def render_profiles(con: Console, profiles: list[Profile]) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for col in ("name", "torch", "xformers", "python"):
        table.add_column(col, no_wrap=True)
    table.add_column("for")
    for p in profiles:
        mark = " (yours)" if p.source == "user" else ""
        table.add_row(p.name, p.torch, p.xformers or "-", p.python, p.description + mark)
    con.print(table)
    con.print("[dim]details: sdboot profiles show NAME; your own: docs/gpu-and-profiles.md[/dim]")


def render_profile(con: Console, p: Profile) -> None:
    con.print(f"[bold]{p.name}[/bold]  {p.description}")
    rows = [
        ("torch", p.torch), ("torchvision", p.torchvision), ("xformers", p.xformers or "-"),
        ("backend", p.backend + (f" (CUDA {p.cuda})" if p.cuda else "")),
        ("wheels from", (p.index_url or "the default package index")
         + {"extra": " (--extra-index-url)", "index": " (--index-url)"}.get(p.index_mode, "")),
        ("GPU architectures", ", ".join(p.arch) + (f" (+PTX on {', '.join(p.ptx)})"
                                                   if p.ptx else "") if p.arch else "-"),
        ("Python", p.python),
        ("WebUI", ", ".join(p.webui) or "any"),
        ("platforms", ", ".join(p.platforms)),
        ("minimum driver", ", ".join(f"{k} {v}" for k, v in p.min_driver.items()) or "-"),
        ("file", p.path),
    ]
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    con.print(table)
    for note in p.notes:
        con.print(f"note: {note}")


def render_resolution(con: Console, res: Resolution, explain: bool) -> None:
    if res.profile is not None:
        p = res.profile
        con.print(f"[bold green]{p.name}[/bold green]: torch {p.torch}, torchvision "
                  f"{p.torchvision}, xformers {p.xformers or '-'}")
        con.print(f"  from {p.index_url or 'the default package index'}")
        for reason in res.reasons:
            con.print(f"  - {reason}")
    if explain or res.profile is None:
        if res.rejected:
            con.print("[bold]rejected:[/bold]")
            for rej in res.rejected:
                con.print(f"  {rej.profile}: {rej.why}")
    elif res.rejected:
        con.print(f"[dim]{len(res.rejected)} other profiles do not fit; --explain says why[/dim]")


MARKS = {"error": "[red]✗[/red]", "warning": "[yellow]![/yellow]", "info": "[dim]i[/dim]"}


def render_verdict(con: Console, verdict: Verdict, doc: dict[str, Any]) -> None:
    mark = "[green]✓[/green]" if verdict.ok else "[red]✗[/red]"
    con.print(f"{mark} {verdict.summary}")
    con.print(f"  [dim]python {doc['python']}"
              + (f"; expected profile {doc['expected_profile']}" if doc["expected_profile"]
                 else "") + "[/dim]")
    for finding in verdict.findings:
        con.print(f"{MARKS.get(str(finding.severity), '-')} [bold]{finding.code}[/bold]: "
                  f"{finding.message}")
        if finding.fix is not None:
            con.print(f"    fix: {finding.fix.summary}")
            for argv in finding.fix.commands:
                con.print(f"      $ {quote(argv)}", markup=False)
    if not verdict.ok:
        con.print("The WebUI cannot run on this GPU with this environment; "
                  "apply the fix above, then run sdboot verify again.")
