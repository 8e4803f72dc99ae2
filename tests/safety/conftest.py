"""Fixtures shared by the adversarial tests: a hostile loopback HTTP server and a scene of a
WebUI with victim files around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.safety.test_downloads import Hostile, lora_bytes
from tests.world.launchfiles import write_webui


@pytest.fixture()
def server() -> Iterator[Hostile]:
    srv = Hostile()
    yield srv
    srv.stop()


@pytest.fixture()
def scene(tmp_path: Path) -> dict[str, Path]:
    """A WebUI, a HOME with a .bashrc, a victim file next to the WebUI and one inside the
    target folder: all must be byte-identical after any refused download."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# the user's shell settings\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n")
    webui = write_webui(tmp_path / "webui")
    inner = webui / "models/Lora/keep.safetensors"
    inner.parent.mkdir(parents=True)
    inner.write_bytes(lora_bytes(16))
    return {"home": home, "victim": victim, "webui": webui, "inner": inner}
