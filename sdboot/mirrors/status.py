"""What mirror mode is applied to a WebUI folder (`mirror status`) and the selection it
implies for sdboot's own work there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.mirrors.apply import USER_FILES, proxied_urls, read_state, sha256
from sdboot.mirrors.env import (
    read_block,
)
from sdboot.mirrors.table import MirrorTable, Selection
from sdboot.webui.folder import launch_file


def status(root: Path, table: MirrorTable) -> dict[str, Any]:
    """What is applied, for humans and for `mirror status --json`."""
    state = read_state(root)
    lf = launch_file(root)
    rel = lf.relative_to(root).as_posix() if lf else None
    doc: dict[str, Any] = {"schema": "sdboot.mirror-status/1", "webui": str(root),
                           "launch_file": rel, "rewrite": None, "env": None,
                           "hand_rewrites": [], "problems": []}
    rw = state.get("rewrite")
    current = lf.read_bytes() if lf else b""
    if rw:
        if sha256(current) == rw.get("rewritten_sha256"):
            state_word = "applied"
        elif sha256(current) == rw.get("original_sha256"):
            state_word = "undone (the file is the original again)"
        else:
            state_word = "edited since"
            doc["problems"].append(t("{file} was edited after the rewrite; revert needs "
                                     "--force", file=rw["file"]))
        doc["rewrite"] = {"file": rw["file"], "mirror": rw.get("mirror"),
                          "prefix": rw.get("prefix"), "urls": rw.get("urls"),
                          "state": state_word}
    elif lf is not None:
        text = current.decode("utf-8", errors="replace")
        try:
            doc["hand_rewrites"] = proxied_urls(text, table)[:20]
        except SdbootError as exc:
            doc["problems"].append(exc.message)
    env_files = {}
    for name, _ in USER_FILES:
        path = root / name
        if path.is_file():
            found = read_block(path.read_text(encoding="utf-8", errors="replace"))
            if found:
                env_files[name] = found
    if state.get("env") or env_files:
        doc["env"] = {"selection": (state.get("env") or {}).get("selection"),
                      "files": sorted(env_files), "vars": next(iter(env_files.values()), {})}
    return doc



def webui_selection(root: Path, table: MirrorTable) -> Selection:
    """The mirrors a WebUI uses: the install record's, overridden by `mirror apply`'s."""
    from sdboot.mirrors.loading import select
    from sdboot.webui.record import read_record

    names = {g: n for g, n in (read_record(root).get("mirror") or {}).items()
             if g != "label" and n}
    names.update({g: n for g, n in ((read_state(root).get("env") or {}).get("selection")
                                    or {}).items() if g != "label" and n})
    try:
        return select(table, None, True, **names)
    except SdbootError:  # a mirror that is no longer in the table: the upstreams
        return select(table, None)
