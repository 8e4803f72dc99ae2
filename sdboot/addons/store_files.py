"""A WebUI's own model files and the model store (webui/store.py): which files the WebUI
stops seeing once it uses the store, and moving them there, only when the user asks
(`sdboot models store DIR --webui W --move`): the plan first, never replacing a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdboot.addons.models import FOLDERS, model_files
from sdboot.errors import SdbootError
from sdboot.io.files import inside, move_no_clobber


@dataclass(frozen=True)
class Move:
    src: Path
    dst: Path
    clash: bool  # a file of that name is in the store already: left where it is

    def to_json(self) -> dict[str, object]:
        return {"from": str(self.src), "to": str(self.dst), "clash": self.clash}


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def plan_moves(root: Path, store: Path) -> list[Move]:
    """Each model file in the WebUI's own folders (FOLDERS), with where it would go in the
    store (the same folder and subfolder). A WebUI folder that is the store's is left out."""
    moves: list[Move] = []
    for rel in FOLDERS.values():
        folder, target = root / rel, store / rel
        if _same_folder(folder, target):
            continue
        for path in model_files(folder):
            dst = target / path.relative_to(folder)
            moves.append(Move(path, dst, dst.exists() or dst.is_symlink()))
    return moves


def run_moves(store: Path, moves: list[Move]) -> list[Move]:
    """Move the files of the plan that clash with nothing; returns those moved. A file that
    appeared in the store meanwhile is kept (move_no_clobber refuses), and so is the WebUI's."""
    done: list[Move] = []
    for move in moves:
        if move.clash:
            continue
        inside(store, move.dst, "the model's place in the store")
        move.dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            move_no_clobber(move.src, move.dst)
        except SdbootError:
            continue
        done.append(move)
    return done
