"""Damaged model files and doctor's moves: refuse a damaged file, move a model inside the
WebUI folder, quarantine one; `fix_command` is the entry doctor --fix runs."""

from __future__ import annotations

import os
from pathlib import Path

from sdboot.addons.models import Inspection, inspect_model
from sdboot.errors import SdbootError
from sdboot.i18n import N_, Text, t
from sdboot.io.files import inside, move_no_clobber

# --- damaged files and doctor's moves (through the file funnel) ---------------------------

QUARANTINE = ".sdboot/quarantine"


def real_file_hint(found: Inspection) -> Text:
    """How to get the real file in place of a damaged one."""
    if found.lfs_sha256:
        return t("get the real file: {command} (the pointer's sha256; in a git clone: git lfs "
                 "pull)", command=f"sdboot models add URL --sha256 {found.lfs_sha256}")
    return t("get the real file: sdboot models add URL --sha256 HEX (the URL and sha256 from "
             "the model's page)")


def refuse_damaged(file: Path) -> None:
    """Raise (exit 1) when file is something the WebUI cannot load: a git-LFS pointer, an
    HTML page, an empty, truncated or malformed model file."""
    found = inspect_model(file)
    if found.problem:
        raise SdbootError(t("{name} is {problem}", name=file.name, problem=found.problem),
                          real_file_hint(found),
                          exit_code=1)


def model_folder(root: Path, folder: Path, what: str | None = None) -> Path:
    """`folder` resolved and proven to be where it belongs. Under WEBUI/models/, a folder
    (or models/ itself) may be a symbolic link the user made to another disk or to a shared
    model store: such a link is followed when it points at a folder. Every other path, and
    every name below a model folder, must stay inside the WebUI (io.files.inside)."""
    what = what or t("the model folder")
    try:
        rel = folder.relative_to(root)
    except ValueError:
        return inside(root, folder, what)
    if not rel.parts or rel.parts[0] != "models" or ".." in rel.parts:
        return inside(root, folder, what)
    current = inside(root, ".", what)
    for part in rel.parts:
        step = current / part
        if step.is_symlink():
            target = step.resolve()
            if not target.is_dir():
                raise SdbootError(t("{path} is a link to {target}, which is not a folder",
                                    path=step, target=target),
                                  t("point the link at your models folder, or remove it"),
                                  exit_code=2)
            current = target
        else:
            current = step
    return current


_DESTINATION = N_("the destination")


def _move_inside(root: Path, src: Path, dst: Path) -> None:
    """Move src to dst, both proven inside their folders, never replacing an existing
    file. A symbolic link is moved as a link (what it points to is not touched)."""
    base = model_folder(root, src.parent, t("the model's folder"))
    if not src.is_symlink():
        inside(base, src, t("the model file"))
    model_folder(root, dst.parent, t(_DESTINATION))  # before mkdir: never outside
    dst.parent.mkdir(parents=True, exist_ok=True)
    model_folder(root, dst.parent, t(_DESTINATION))
    if src.is_symlink():
        target = os.readlink(src)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(os.path.abspath(src)), target)
        try:
            os.symlink(target, dst)  # fails when dst exists: nothing is replaced
        except FileExistsError:
            raise SdbootError(t("{path} already exists: not replacing it", path=dst),
                              t("move or rename that file yourself first"),
                              exit_code=1) from None
        os.unlink(src)
        return
    move_no_clobber(src, dst)


def move_model(root: Path, src: Path, dst: Path) -> Path:
    """doctor's model-misplaced fix: src to dst inside the WebUI, refusing when dst exists."""
    if os.path.lexists(dst):
        raise SdbootError(t("{path} already exists: not replacing it with {name}", path=dst,
                            name=src.name),
                          t("compare the two files (sdboot models list), then remove or "
                            "rename one of them"), exit_code=1)
    _move_inside(root, src, dst)
    return dst


def quarantine(root: Path, src: Path) -> Path:
    """doctor's model-corrupt fix: src into WEBUI/.sdboot/quarantine/, as NAME or, when a
    file of that name is there already, NAME-1, NAME-2, ... (nothing is replaced)."""
    folder = root / QUARANTINE
    stem, suffix = os.path.splitext(src.name)
    for n in range(1000):
        dst = folder / (src.name if n == 0 else f"{stem}-{n}{suffix}")
        if os.path.lexists(dst):
            continue
        try:
            _move_inside(root, src, dst)
        except SdbootError:
            if os.path.lexists(dst) and os.path.lexists(src):
                continue  # taken meanwhile: the next name
            raise
        return dst
    raise SdbootError(t("{path} holds 1000 files named like {name}", path=folder,
                        name=src.name),
                      t("empty the quarantine folder"), exit_code=1)


def fix_command(argv: list[str]) -> int:
    """What doctor's model fixes run (`python -c`, through the runner): `move ROOT SRC DST`
    or `quarantine ROOT SRC`. Errors are the two lines every sdboot error is."""
    import sys

    try:
        if len(argv) == 4 and argv[0] == "move":
            root, src, dst = (Path(a) for a in argv[1:])
            move_model(root, src, dst)
            print(f"moved {src} to {dst}")
        elif len(argv) == 3 and argv[0] == "quarantine":
            root, src = Path(argv[1]), Path(argv[2])
            if not os.path.lexists(src):
                print(f"{src} is gone already")
                return 0
            if not inspect_model(src).problem:
                print(f"{src} is no longer damaged: left where it is")
                return 0
            print(f"moved {src} to {quarantine(root, src)}")
        else:
            raise SdbootError(t("bad arguments {argv}", argv=repr(argv)),
                              t("move ROOT SRC DST | quarantine ROOT SRC"), exit_code=2)
    except SdbootError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}\nhint: nothing was replaced; check the folder's permissions",
              file=sys.stderr)
        return 1
    return 0
