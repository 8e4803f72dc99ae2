"""Gathers the facts a resolution needs (GPU, host, WebUI) and calls the pure resolver;
also the sdboot.resolve/1 document. Shared by `resolve`, `verify` and later `install`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.machine.gpu import detect_gpu, detect_host
from sdboot.stack.fit import resolve_profile
from sdboot.stack.profiles import DEFAULT_PYTHON, KNOWN_PROFILES, UNKNOWN_PROFILE, load_profiles
from sdboot.values import GpuInfo, HostFacts, Resolution, WebuiFacts
from sdboot.webui.folder import detect_webui, parse_webui_version


def resolution_to_json(res: Resolution, gpu: GpuInfo, webui: WebuiFacts | None) -> dict[str, Any]:
    p = res.profile
    return {
        "schema": "sdboot.resolve/1",
        "profile": p.name if p else None,
        "torch": p.torch if p else None,
        "torchvision": p.torchvision if p else None,
        "xformers": p.xformers if p else None,
        "cuda": p.cuda if p else None,
        "index_url": p.index_url if p else None,
        "reasons": list(res.reasons),
        "rejected": [{"profile": r.profile, "why": r.why} for r in res.rejected],
        "advice": list(res.advice),
        "gpu": gpu.to_json(),
        "webui": None if webui is None else {
            "flavor": webui.flavor, "version": webui.version, "source": webui.version_source,
            "torch_pin": webui.pins.torch},
    }


def check_python_version(text: str) -> str:
    parts = text.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise SdbootError(t("'{text}' is not a Python version", text=text),
                          t("use the X.Y form, e.g. 3.10"))
    return ".".join(parts[:2])


def resolve_for_machine(
    webui_dir: Path | None,
    webui_version: str | None,
    python_version: str | None,
    override: str | None,
    gpu: GpuInfo | None = None,
    host: HostFacts | None = None,
) -> tuple[Resolution, dict[str, Any]]:
    profiles = load_profiles()
    if override is not None and override not in profiles:
        raise SdbootError(t(UNKNOWN_PROFILE, name=override),
                          t(KNOWN_PROFILES, names=", ".join(sorted(profiles))))
    webui = None
    if webui_dir is not None:
        webui = detect_webui(webui_dir)
    elif webui_version is not None:
        webui = parse_webui_version(webui_version)
    python = check_python_version(python_version) if python_version else DEFAULT_PYTHON
    host = host or detect_host()
    gpu = gpu or detect_gpu(host=host)
    res = resolve_profile(profiles, gpu, host, python, webui, override)
    if python_version is None and res.profile is not None:
        res = Resolution(res.profile, (*res.reasons, t(
            "Python {version} assumed (the WebUI's tested version); set --python-version",
            version=DEFAULT_PYTHON)),
                         res.rejected, res.advice)
    return res, resolution_to_json(res, gpu, webui)
