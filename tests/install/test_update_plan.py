"""The pure parts of `sdboot update`: the remote's refs, `latest`, and the validation of
snapshots and of the update state (no world needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.install.snapshot import list_snapshots, read_snapshot, restore_files, take_snapshot
from sdboot.install.update_plan import (
    latest_release,
    parse_ls_remote,
    read_update_state,
    resolve_ref,
)

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
LS_REMOTE = (f"{A}\trefs/heads/master\n{B}\trefs/heads/dev\n{C}\trefs/tags/v1.9.4\n"
             f"{D}\trefs/tags/v1.10.1\n{A}\trefs/tags/v1.10.1^{{}}\n"
             f"{B}\trefs/tags/v1.11.0-RC\n{C}\trefs/tags/v2-beta\n{C}\trefs/tags/1.99.0\n"
             "garbage line\n")


def test_refs_and_latest() -> None:
    refs = parse_ls_remote(LS_REMOTE)
    assert refs["refs/tags/v1.10.1"] == A  # the annotated tag's commit, not the tag object
    # by version, not by name (v1.9.4 > v1.10.1 as strings); pre-releases and unprefixed
    # names are no releases
    assert latest_release(refs) == "v1.10.1"
    assert resolve_ref(refs, "dev") == B and resolve_ref(refs, "v1.9.4") == C
    assert resolve_ref(refs, "v9.9.9") is None and resolve_ref(refs, "abc1234") is None
    assert latest_release(parse_ls_remote(f"{A}\trefs/heads/main\n")) is None


def _webui(tmp_path: Path) -> Path:
    root = tmp_path / "webui"
    (root / ".sdboot").mkdir(parents=True)
    (root / "webui-user.sh").write_bytes(b"export X=1\r\n")
    (root / ".sdboot/lock.txt").write_text("# sdboot lock\n")
    return root


FACTS = {"reason": "test", "ref": "dev", "profile": "cpu", "mirror": {"github": None},
         "webui": {"commit": A, "branch": "master", "ref": "v1.10.1",
                   "origin": "https://github.com/o/r.git"},
         "repositories": {"k-diffusion": {"commit": B, "origin": None}},
         "extensions": {"ext one": {"commit": C, "branch": None, "origin": None}}}


def test_snapshot_round_trip_and_restore(tmp_path: Path) -> None:
    root = _webui(tmp_path)
    snap_id = take_snapshot(root, FACTS)
    snap = read_snapshot(root, snap_id)
    assert snap["files"]["webui-user.sh"] == hashlib.sha256(b"export X=1\r\n").hexdigest()
    assert snap["files"]["launch.py"] is None
    assert [s["id"] for s in list_snapshots(root)] == [snap_id]
    (root / "webui-user.sh").write_bytes(b"changed\n")
    (root / ".sdboot/mirror.json").write_text("{}")  # not in the snapshot: sdboot's, removed
    assert sorted(restore_files(root, snap)) == [".sdboot/mirror.json", "webui-user.sh"]
    assert (root / "webui-user.sh").read_bytes() == b"export X=1\r\n"
    assert not (root / ".sdboot/mirror.json").exists()
    assert take_snapshot(root, FACTS) != snap_id  # the same second: a new name


@pytest.mark.parametrize("edit", [
    lambda d: d["repositories"].update({"../../x": {"commit": A, "origin": None}}),
    lambda d: d["webui"].update(commit="HEAD~1"),
    lambda d: d["extensions"].update({"e": {"commit": "zz", "origin": None}}),
    lambda d: d["files"].update({"../../etc/passwd": "0" * 64}),
    lambda d: d["files"].update({"webui-user.sh": "../" + "0" * 61}),
    lambda d: d["webui"].update(origin="--upload-pack=touch x"),
    lambda d: d.update(id="20990101T000000Z"),
    lambda d: d.update(schema="sdboot.snapshot/9"),
])
def test_a_hand_edited_snapshot_is_refused(tmp_path: Path, edit: object) -> None:
    root = _webui(tmp_path)
    snap_id = take_snapshot(root, FACTS)
    path = root / ".sdboot/snapshots" / f"{snap_id}.json"
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(SdbootError) as err:
        read_snapshot(root, snap_id)
    assert err.value.exit_code == 2


def test_a_damaged_copy_is_refused(tmp_path: Path) -> None:
    root = _webui(tmp_path)
    snap = read_snapshot(root, take_snapshot(root, FACTS))
    copy = root / ".sdboot/snapshots" / snap["id"] / snap["files"]["webui-user.sh"]
    copy.write_bytes(b"tampered")
    with pytest.raises(SdbootError, match="missing or damaged"):
        read_snapshot(root, snap["id"])
    with pytest.raises(SdbootError, match="not a snapshot name"):
        read_snapshot(root, "../../x")


def test_update_state_is_validated(tmp_path: Path) -> None:
    root = _webui(tmp_path)
    assert read_update_state(root) == {}
    state = root / ".sdboot/update.json"
    good = {"schema": "sdboot.update-state/1", "phase": "install", "snapshot":
            "20261207T120000Z", "ref": "dev", "commit": A}
    state.write_text(json.dumps(good))
    assert read_update_state(root)["ref"] == "dev"
    for bad in ({"phase": "sideways"}, {"commit": "HEAD"}, {"snapshot": "../x"},
                {"ref": None}):
        state.write_text(json.dumps({**good, **bad}))
        with pytest.raises(SdbootError) as err:
            read_update_state(root)
        assert err.value.exit_code == 2
