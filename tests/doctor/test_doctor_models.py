"""`sdboot doctor`'s models check: `model-corrupt` for each damaged kind (git-LFS pointer,
HTML page, bad safetensors header, empty / truncated / encrypted .ckpt zip) with its
healthy twin never reported, the --fix that moves such files into .sdboot/quarantine/
(never over a file already there) and the clean re-check, and the model-misplaced fix
that refuses to move a file onto another one (the victim stays byte-identical)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sdboot.addons.damaged import QUARANTINE, fix_command
from sdboot.doctor import models as check
from sdboot.doctor.facts import DoctorFacts
from tests.conftest import clean_env, run_cli
from tests.doctor.test_doctor import CHECKPOINT_KEYS, LORA_KEYS, VAE_KEYS, safetensors
from tests.safety.test_model_files import HEALTHY, HOSTILE, LFS_SHA, build, torch_zip
from tests.world.launchfiles import write_webui

FOLDERS = ["models/Stable-diffusion", "models/VAE", "models/Lora", "models/LyCORIS",
           "embeddings", "models/hypernetworks"]
CODES = "model-corrupt,model-misplaced,no-checkpoint"
TWIN_FOLDER = {"safetensors-lora": "models/Lora", "safetensors-metadata": "models/VAE",
               "pt-legacy-pickle": "embeddings"}


def webui_with_checkpoint(tmp_path: Path) -> Path:
    webui = write_webui(tmp_path / "webui")
    safetensors(webui / "models/Stable-diffusion/sd15-base.safetensors", CHECKPOINT_KEYS)
    return webui


def findings(webui: Path) -> list[tuple[str, str, str]]:
    """(code, severity, message) of the models check, run in this process."""
    outcome = check.run(DoctorFacts(webui))
    return [(f.code, str(f.severity), f.message) for f in outcome.findings]


def doctor(webui: Path, *args: str) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    res = run_cli("doctor", str(webui), "--offline", "--only", CODES, "--json", *args,
                  timeout=60)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    doc = json.loads(res.stdout)
    found = [f for c in doc["checks"] for f in c["findings"]]
    assert res.returncode == (1 if doc["summary"]["errors"] else 0)
    return res.returncode, doc, found


# --- each damaged kind, in every folder the WebUI loads from; its healthy twin passes -------


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_each_damaged_kind_is_model_corrupt(tmp_path: Path, kind: str) -> None:
    webui = webui_with_checkpoint(tmp_path)
    folder = FOLDERS[sorted(HOSTILE).index(kind) % len(FOLDERS)]
    bad = build(HOSTILE, kind, webui / folder)
    got = findings(webui)
    rel = bad.relative_to(webui).as_posix()
    assert [(c, s) for c, s, _ in got] == [("model-corrupt", "error")], got
    message = got[0][2]
    assert message.startswith(f"{rel} is ") and HOSTILE[kind][2] in message
    assert "sdboot models add URL --sha256" in message
    if kind == "lfs-pointer":
        assert LFS_SHA in message


@pytest.mark.parametrize("kind", sorted(HEALTHY))
def test_each_healthy_twin_is_not_reported(tmp_path: Path, kind: str) -> None:
    webui = webui_with_checkpoint(tmp_path)
    build(HEALTHY, kind, webui / TWIN_FOLDER.get(kind, "models/Stable-diffusion"))
    assert findings(webui) == []


def test_only_a_damaged_checkpoint_is_no_checkpoint_too(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    build(HOSTILE, "lfs-pointer", webui / "models/Stable-diffusion")
    assert sorted(c for c, _, _ in findings(webui)) == ["model-corrupt", "no-checkpoint"]


def test_the_cli_reports_exactly_the_damaged_files_and_stays_fast(tmp_path: Path) -> None:
    webui = webui_with_checkpoint(tmp_path)
    bad = set()
    for i, kind in enumerate(sorted(HOSTILE)):
        bad.add(build(HOSTILE, kind, webui / FOLDERS[i % len(FOLDERS)] / kind)
                .relative_to(webui).as_posix())
    for kind in HEALTHY:
        build(HEALTHY, kind, webui / TWIN_FOLDER.get(kind, "models/Stable-diffusion") / kind)
    big = webui / "models/Stable-diffusion/sdxl.safetensors"  # 6 GB, sparse
    header = json.dumps({k: {"dtype": "F16", "shape": [1], "data_offsets": [0, 6 * 1024**3]}
                         for k in CHECKPOINT_KEYS}).encode()
    with big.open("wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        fh.truncate(8 + len(header) + 6 * 1024**3)
    rc, doc, found = doctor(webui)
    assert rc == 1 and doc["summary"]["errors"] == len(HOSTILE)
    assert {f["code"] for f in found} == {"model-corrupt"}
    assert {f["message"].split(" is ")[0] for f in found} == bad
    models = next(c for c in doc["checks"] if c["id"] == "models")
    assert models["elapsed_ms"] < 1000, models  # headers only: the 6 GB file is not read
    assert all(f["fix"]["automatic"] for f in found)


# --- --fix: quarantine, then a clean re-check ------------------------------------------------


def test_fix_quarantines_without_clobbering_and_the_recheck_is_clean(tmp_path: Path) -> None:
    webui = webui_with_checkpoint(tmp_path)
    pointer = build(HOSTILE, "lfs-pointer", webui / "models/Stable-diffusion")
    page = build(HOSTILE, "html-page", webui / "models/Lora")
    half = build(HOSTILE, "truncated-zip", webui / "models/LyCORIS")
    lookalike = build(HOSTILE, "html-page", webui / "models/VAE")  # same name as `page`
    quarantine = webui / QUARANTINE
    quarantine.mkdir(parents=True)
    earlier = quarantine / pointer.name  # quarantined by an earlier run
    earlier.write_bytes(b"an earlier quarantined file")
    contents = {p.name + p.parent.name: p.read_bytes() for p in (pointer, page, half, lookalike)}
    rc, doc, found = doctor(webui)
    assert rc == 1 and [f["code"] for f in found] == ["model-corrupt"] * 4
    rc, doc, found = doctor(webui, "--fix", "--yes")
    assert rc == 0 and found == [], found  # the re-check is clean
    assert doc["before"]["errors"] == 4 and all(f["ok"] for f in doc["fixes"])
    assert earlier.read_bytes() == b"an earlier quarantined file"
    assert (quarantine / "v1-5-1.safetensors").read_text().startswith("version https://git-lfs")
    moved = sorted(p.name for p in quarantine.iterdir())
    assert moved == ["civitai-1.safetensors", "civitai.safetensors", "half.ckpt",
                     "v1-5-1.safetensors", "v1-5.safetensors"]
    assert sorted(p.read_bytes() for p in quarantine.iterdir() if p != earlier) == \
        sorted(contents.values())  # every byte kept
    assert not any(p.exists() for p in (pointer, page, half, lookalike))
    assert [p.name for p in (webui / "models/Stable-diffusion").iterdir()] == \
        ["sd15-base.safetensors"]  # the healthy checkpoint stays


def test_fix_moves_a_linked_file_as_a_link_and_leaves_its_target(tmp_path: Path) -> None:
    webui = webui_with_checkpoint(tmp_path)
    store = build(HOSTILE, "empty-ckpt", tmp_path / "store")  # a shared model store
    link = webui / "models/Stable-diffusion/zero.ckpt"
    link.symlink_to(store)
    assert fix_command(["quarantine", str(webui), str(link)]) == 0
    moved = webui / QUARANTINE / "zero.ckpt"
    assert moved.is_symlink() and moved.resolve() == store.resolve()
    assert store.is_file() and not os.path.lexists(link)


def test_quarantine_is_refused_when_it_would_leave_the_webui(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    webui = webui_with_checkpoint(tmp_path)
    bad = build(HOSTILE, "html-page", webui / "models/Lora")
    outside = tmp_path / "outside"
    outside.mkdir()
    (webui / ".sdboot").symlink_to(outside, target_is_directory=True)
    assert fix_command(["quarantine", str(webui), str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("error: refusing to touch")
    assert bad.is_file() and list(outside.iterdir()) == []


def test_quarantine_leaves_a_file_that_is_no_longer_damaged(tmp_path: Path) -> None:
    webui = webui_with_checkpoint(tmp_path)
    good = safetensors(webui / "models/Lora/fixed.safetensors", LORA_KEYS)
    assert fix_command(["quarantine", str(webui), str(good)]) == 0
    assert good.is_file() and not (webui / QUARANTINE).exists()


# --- model-misplaced: never onto an existing file ----------------------------------------------


def test_misplaced_fix_never_overwrites_a_file_of_the_same_name(tmp_path: Path) -> None:
    """Two LoRAs named alike, in the checkpoint and the VAE folder: both belong in
    models/Lora/detail.safetensors. The first is moved there; the second fix is not
    automatic (and would be refused): the first one stays byte-identical."""
    webui = webui_with_checkpoint(tmp_path)
    first = safetensors(webui / "models/Stable-diffusion/detail.safetensors", LORA_KEYS)
    second = safetensors(webui / "models/VAE/detail.safetensors", [*LORA_KEYS, "x.alpha"])
    first_bytes, second_bytes = first.read_bytes(), second.read_bytes()
    rc, doc, found = doctor(webui)
    fixes = [f["fix"]["automatic"] for f in found if f["code"] == "model-misplaced"]
    assert fixes == [True, False]
    assert "yourself" in found[1]["fix"]["summary"]
    rc, doc, found = doctor(webui, "--fix", "--yes")
    victim = webui / "models/Lora/detail.safetensors"
    assert victim.read_bytes() == first_bytes  # not overwritten by the second
    assert second.read_bytes() == second_bytes  # and nothing lost
    assert [f["code"] for f in found] == ["model-misplaced"]  # the second one remains


def test_the_move_itself_refuses_an_existing_target(tmp_path: Path) -> None:
    """What runs if a file appears at the target between the check and the fix: the
    command the doctor planned exits 1 with two lines, and the victim is unchanged."""
    webui = webui_with_checkpoint(tmp_path)
    lora = safetensors(webui / "models/VAE/detail.safetensors", LORA_KEYS)
    outcome = check.run(DoctorFacts(webui))
    (finding,) = outcome.findings
    assert finding.code == "model-misplaced" and finding.fix and finding.fix.automatic
    victim = safetensors(webui / "models/Lora/detail.safetensors", VAE_KEYS)  # appears now
    victim_bytes, lora_bytes = victim.read_bytes(), lora.read_bytes()
    (argv,) = finding.fix.commands
    res = subprocess.run(list(argv), capture_output=True, text=True, env=clean_env(),
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and "already exists" in lines[0]
    assert lines[1].startswith("hint: ")
    assert victim.read_bytes() == victim_bytes and lora.read_bytes() == lora_bytes


def test_the_move_stays_inside_the_webui(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    webui = webui_with_checkpoint(tmp_path)
    lora = safetensors(webui / "models/VAE/detail.safetensors", LORA_KEYS)
    outside = tmp_path / "outside"
    assert fix_command(["move", str(webui), str(lora), str(outside / "x.safetensors")]) == 2
    assert "refusing to touch" in capsys.readouterr().err
    assert lora.is_file() and not outside.exists()
    ckpt = torch_zip(webui / "models/VAE/base.ckpt", CHECKPOINT_KEYS)
    data = ckpt.read_bytes()
    target = webui / "models/Stable-diffusion/base.ckpt"
    assert fix_command(["move", str(webui), str(ckpt), str(target)]) == 0
    assert target.read_bytes() == data and not ckpt.exists()
