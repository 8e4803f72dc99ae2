"""The environment probe. It runs INSIDE the target environment's own interpreter, so it
uses the standard library only (it must work in a broken env) and prints one JSON document
between markers. Nothing it imports may write to our stdout: imports are captured.

    <env python> -I probe.py   ->   @@SDBOOT-PROBE@@{...}@@END@@
"""

import contextlib
import io
import json
import platform
import sys
import warnings

MARK_START = "@@SDBOOT-PROBE@@"
MARK_END = "@@END@@"
KERNEL_CHECK = '(torch.ones(8, device="cuda") * 2).sum().item() == 16'


def _dist_version(name):
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return None
    try:
        return metadata.version(name)
    except Exception:
        return None


def _requires(name):
    try:
        from importlib import metadata

        return metadata.requires(name) or []
    except Exception:
        return []


def _captured(fn):
    """Run fn with stdout/stderr and warnings captured: (value, error, output, warnings)."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                value, error = fn(), None
            except BaseException as exc:
                value, error = None, f"{type(exc).__name__}: {exc}"
    return value, error, out.getvalue(), [str(w.message) for w in caught]


def probe_torch():
    info = {"installed": _dist_version("torch") is not None, "dist_version": _dist_version("torch"),
            "version": None, "cuda": None, "import_error": None, "cuda_available": None,
            "device_count": 0, "devices": [], "arch_list": [], "kernel_ok": None,
            "kernel_error": None, "warnings": [], "output": ""}
    if not info["installed"]:
        return info, None
    torch, error, output, warns = _captured(lambda: __import__("torch"))
    info["output"] += output
    info["warnings"] += warns
    if error:
        info["import_error"] = error
        return info, None
    info["version"] = str(getattr(torch, "__version__", ""))
    info["cuda"] = getattr(getattr(torch, "version", None), "cuda", None)

    def cuda_facts():
        available = bool(torch.cuda.is_available())
        facts = {"cuda_available": available, "device_count": 0, "devices": [], "arch_list": []}
        if available:
            facts["device_count"] = int(torch.cuda.device_count())
            for i in range(facts["device_count"]):
                cap = torch.cuda.get_device_capability(i)
                facts["devices"].append({"name": str(torch.cuda.get_device_name(i)),
                                         "capability": "%d.%d" % tuple(cap)})
            facts["arch_list"] = [str(a) for a in torch.cuda.get_arch_list()]
        return facts

    facts, error, output, warns = _captured(cuda_facts)
    info["output"] += output
    info["warnings"] += warns
    if error:
        info["cuda_available"] = False
        info["kernel_error"] = error
        return info, torch
    info.update(facts)
    if info["cuda_available"]:
        ok, error, output, warns = _captured(
            lambda: (torch.ones(8, device="cuda") * 2).sum().item() == 16)
        info["kernel_ok"] = bool(ok) if error is None else False
        info["kernel_error"] = error
        info["output"] += output
        info["warnings"] += warns
    return info, torch


def probe_xformers():
    info = {"installed": _dist_version("xformers") is not None,
            "version": _dist_version("xformers"), "built_for_torch": None,
            "import_error": None, "warnings": [], "output": ""}
    if not info["installed"]:
        return info
    for req in _requires("xformers"):
        head = req.split(";")[0].replace(" ", "")
        if head.startswith("torch=="):
            info["built_for_torch"] = head[len("torch=="):]
    _, error, output, warns = _captured(lambda: __import__("xformers"))
    info["import_error"] = error
    info["output"] = output
    info["warnings"] = warns
    return info


def main():
    doc = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "pip": None,
        "pip_version": _dist_version("pip"),
    }
    _, error, _, _ = _captured(lambda: __import__("pip"))
    doc["pip"] = error is None
    torch_info, _ = probe_torch()
    doc["torch"] = torch_info
    vision_version = _dist_version("torchvision")
    doc["torchvision"] = {"installed": vision_version is not None, "version": vision_version}
    doc["xformers"] = probe_xformers()
    # from the metadata, without importing it: torch's import (above) already met it, and
    # its complaints about it are in torch's output and warnings
    numpy_version = _dist_version("numpy")
    doc["numpy"] = {"installed": numpy_version is not None, "version": numpy_version}
    sys.stdout.write(MARK_START + json.dumps(doc) + MARK_END + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
