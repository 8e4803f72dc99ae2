"""`sdboot mirror list|test|apply|revert|status`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sdboot.i18n import _, local, t

if TYPE_CHECKING:
    from sdboot.mirrors.table import MirrorTable, Selection

mirror_app = typer.Typer(
    help=_("Mirrors for GitHub, the package index, PyTorch wheels, Hugging Face and conda "
           "(for slow or blocked networks, e.g. in mainland China).\n\n"
           "Try: sdboot mirror test, then sdboot mirror apply WEBUI_DIR --mirror cn"),
    no_args_is_help=True)

GROUP_HELP = "github, pypi, torch, hf, conda"
WEBUI_HELP = _("The WebUI folder.")


def register(app: typer.Typer) -> None:
    app.add_typer(mirror_app, name="mirror")


@mirror_app.command("list", help=_(
    "The mirror table: shipped entries and yours ($SDBOOT_CONFIG_DIR/mirrors.yaml)."))
def list_mirrors(
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.mirror-list/1 JSON.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_mirror_list
    from sdboot.mirrors.loading import load_mirrors

    table = load_mirrors()
    if json_out:
        emit_json({"schema": "sdboot.mirror-list/1",
                   "mirrors": [m.to_json() for m in table.mirrors.values()],
                   "presets": table.presets,
                   "substitutions": [{"from": s.from_url, "to": s.to_url}
                                     for s in table.substitutions]})
        return
    render_mirror_list(console(), table)


@mirror_app.command("test", help=_(
    "Probe every mirror and upstream at once and rank them by latency.\n"
    "\n"
    "GitHub mirrors must answer git's info/refs for a real repository (what a clone asks\n"
    "first), indexes their simple page, Hugging Face a small file. Whatever has not answered\n"
    "at the deadline counts as dead, so the whole test takes at most --timeout seconds.\n"
    "The ranking is cached for --mirror auto. Exit 1 when no candidate of a kind answered."))
def test_mirrors(
    kind: list[str] = typer.Option([], "--kind", metavar="KIND",
                                   help=_("Only these groups ({groups}); repeatable.").format(
                                       groups=GROUP_HELP)),
    timeout: float = typer.Option(6.0, "--timeout", metavar="SECONDS", min=0.2, max=120,
                                  help=_("One deadline for all probes together.")),
    insecure: bool = typer.Option(False, "--insecure",
                                  help=_("Also probe plain-http mirrors.")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.mirror-test/1 JSON.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    import time

    from rich.text import Text

    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_health
    from sdboot.cli.terminal import busy, say
    from sdboot.errors import SdbootError
    from sdboot.io.datafile import doc_link
    from sdboot.mirrors.health import choose_auto, plan_candidates, rank, run_health, save_cache
    from sdboot.mirrors.loading import load_mirrors
    from sdboot.mirrors.table import GROUPS

    groups = tuple(kind) or GROUPS
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise SdbootError(t("unknown --kind '{kind}'", kind=bad[0]),
                          t("use one of: {groups}", groups=GROUP_HELP))
    table = load_mirrors()
    cands = plan_candidates(table, groups, insecure=insecure)
    started = time.monotonic()
    with busy(None if json_out else console(), _(
            "probing {count} mirrors and upstreams (at most {seconds:g} s)").format(
            count=len(cands), seconds=timeout)):
        results = run_health(cands, timeout)
    elapsed = time.monotonic() - started
    if set(groups) == set(GROUPS):
        save_cache(results)
    choice, reasons = choose_auto(results, table)
    if json_out:
        emit_json({"schema": "sdboot.mirror-test/1", "deadline_s": timeout,
                   "elapsed_s": round(elapsed, 3),
                   "results": [h.to_json() for h in rank(results)],
                   "auto": choice.to_json(), "reasons": reasons})
    else:
        render_health(console(), rank(results), elapsed, timeout, reasons)
    tested = [g for g in groups if any(h.candidate.group == g for h in results)]
    dead = [g for g in tested
            if not any(h.alive for h in results if h.candidate.group == g)]
    if dead:
        err = console(json_mode=True)  # stderr: stdout may carry the JSON document
        if dead == tested:
            say(err, Text(_("nothing answered, upstreams and mirrors alike: you seem to be "
                            "offline (check the network or the proxy settings, then run "
                            "sdboot mirror test again)")))
        else:
            say(err, Text(_("no candidate answered for: {kinds} (downloads of that kind will "
                            "fail until one does; add a mirror of your own: {doc})").format(
                kinds=", ".join(dead), doc=doc_link("mirrors"))))
        raise typer.Exit(1)


def _selection(mirror: str | None, github: str | None, pypi: str | None, torch: str | None,
               hf: str | None, insecure: bool, timeout: float, root: Path | None = None,
               ) -> tuple[MirrorTable, Selection, list[str]]:
    from dataclasses import replace

    from sdboot.mirrors.health import auto_select
    from sdboot.mirrors.loading import load_mirrors, select

    table = load_mirrors()
    reasons: list[str] = []
    if mirror == "auto":
        auto, reasons, results = auto_select(table, timeout)
        picked = auto.chosen()
        if root is not None:
            # a kind where nothing answered (offline for a moment) keeps what it had:
            # writing "no mirror" would throw away a working setting
            from sdboot.mirrors.status import webui_selection

            for group, name in webui_selection(root, table).chosen().items():
                if group not in picked and not any(
                        h.alive for h in results if h.candidate.group == group):
                    picked[group] = name
                    reasons.append(t("{group}: nothing answered; keeping {name}",
                                     group=group, name=name))
        given = {"github": github, "pypi": pypi, "torch": torch, "hf": hf}
        sel = select(table, None, insecure,
                     **{**picked, **{k: v for k, v in given.items() if v}})
        sel = replace(sel, label="auto")
    else:
        sel = select(table, mirror, insecure, github=github, pypi=pypi, torch=torch, hf=hf)
    return table, sel, reasons


@mirror_app.command("apply", help=_(
    "Send the WebUI's downloads through mirrors.\n"
    "\n"
    "--mode env (the default) writes a managed block into webui-user.sh and webui-user.bat:\n"
    "the WebUI's *_REPO / *_PACKAGE / TORCH_* / INDEX_URL variables, PIP_INDEX_URL,\n"
    "HF_ENDPOINT, and git's url.<mirror>.insteadOf for the WebUI's processes only (through\n"
    "GIT_CONFIG_COUNT), so extension installs go through the mirror too.\n"
    "\n"
    "--mode rewrite puts a proxy prefix in front of every GitHub URL in the launch file's\n"
    "string literals, keeping every other byte; `sdboot mirror revert` restores the file\n"
    "exactly.\n"
    "\n"
    "Name the mirrors: --mirror PRESET, --mirror auto, --mirror none (no mirror, gone\n"
    "repositories replaced), or one per group (--github, --pypi, --torch, --hf)."))
def apply(
    webui_dir: Path = typer.Argument(..., metavar="WEBUI_DIR", help=WEBUI_HELP),
    github: str | None = typer.Option(None, "--github", metavar="NAME",
                                      help=_("GitHub mirror (see sdboot mirror list).")),
    mirror: str | None = typer.Option(None, "--mirror", metavar="PRESET|auto|none",
                                      help=_("A preset such as cn (one mirror per group), "
                                             "auto (the fastest that answer), or none.")),
    pypi: str | None = typer.Option(None, "--pypi", metavar="NAME",
                                    help=_("Package index mirror.")),
    torch: str | None = typer.Option(None, "--torch", metavar="NAME",
                                     help=_("PyTorch wheel mirror.")),
    hf: str | None = typer.Option(None, "--hf", metavar="NAME",
                                  help=_("Hugging Face endpoint.")),
    mode: str = typer.Option("env", "--mode", metavar="env|rewrite",
                             help=_("env (default): variables in webui-user.sh/.bat, no WebUI "
                                    "file changes. rewrite: edit the launch file's GitHub URLs "
                                    "(the old way; blocks git pull).")),
    dry_run: bool = typer.Option(False, "--dry-run", help=_("Show the diff, change nothing.")),
    insecure: bool = typer.Option(False, "--insecure", help=_("Allow plain-http mirrors.")),
    timeout: float = typer.Option(6.0, "--timeout", metavar="SECONDS", min=0.2, max=120,
                                  help=_("Deadline of the health check behind --mirror auto.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from rich.text import Text

    from sdboot.cli.common import console
    from sdboot.cli.render import render_apply
    from sdboot.cli.terminal import busy, say
    from sdboot.errors import SdbootError
    from sdboot.mirrors.apply import apply_env, apply_rewrite, webui_root

    if mode not in ("env", "rewrite"):
        raise SdbootError(t("unknown --mode '{mode}'", mode=mode), t("use env or rewrite"))
    if not any((mirror, github, pypi, torch, hf)):
        raise SdbootError(t("no mirror given"),
                          t("add --mirror PRESET (e.g. cn), --mirror auto, --mirror none (the "
                            "upstreams, gone repositories replaced) or --github/--pypi/--torch/"
                            "--hf NAME; sdboot mirror list shows them"))
    root = webui_root(webui_dir)
    con = console()
    with busy(con if mirror == "auto" else None,
              _("probing the mirrors (at most {seconds:g} s)").format(seconds=timeout)):
        table, sel, reasons = _selection(mirror, github, pypi, torch, hf, insecure, timeout,
                                         root)
    if mode == "rewrite":
        result = apply_rewrite(root, sel, table, dry_run)
    else:
        result = apply_env(root, sel, table, dry_run)
    for reason in reasons:
        say(con, Text("auto: " + local(reason)))
    render_apply(con, result, sel, dry_run)


@mirror_app.command("revert", help=_(
    "Undo `mirror apply`: the launch file byte for byte, and the webui-user block.\n"
    "\n"
    "A launch file that someone rewrote by hand (the old ghproxy.com guides) is cleaned by\n"
    "removing the proxy prefixes from its GitHub URLs."))
def revert_cmd(
    webui_dir: Path = typer.Argument(..., metavar="WEBUI_DIR", help=WEBUI_HELP),
    force: bool = typer.Option(False, "--force", help=_(
        "Restore the original even if the launch file was edited since (the edited file is "
        "kept).")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.cli.common import console
    from sdboot.mirrors.apply import revert, webui_root
    from sdboot.mirrors.loading import load_mirrors

    root = webui_root(webui_dir)
    result = revert(root, load_mirrors(), force)
    con = console()
    if not result.restored and not result.notes:
        con.print(_("Nothing to revert: no mirror is applied to this WebUI."))
    for rel in result.restored:
        con.print(_("restored {file}").format(file=rel), markup=False)
    for note in result.notes:
        con.print(local(note), markup=False, soft_wrap=True)


@mirror_app.command("status", help=_(
    "What mirroring is applied to a WebUI: a launch-file rewrite (by sdboot or by hand),\n"
    "and the env block in webui-user.sh / .bat."))
def status_cmd(
    webui_dir: Path = typer.Argument(..., metavar="WEBUI_DIR", help=WEBUI_HELP),
    json_out: bool = typer.Option(False, "--json",
                                  help=_("Print sdboot.mirror-status/1 JSON.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_mirror_status
    from sdboot.mirrors.apply import webui_root
    from sdboot.mirrors.loading import load_mirrors
    from sdboot.mirrors.status import status

    root = webui_root(webui_dir)
    doc = status(root, load_mirrors())
    if json_out:
        emit_json(doc)
    else:
        render_mirror_status(console(), doc)
