"""Model files: what kind a file is, from its header only (safetensors: the JSON header's
tensor names; never a pickle load), and which WebUI folder each kind belongs in."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from sdboot.model import StrEnum

MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


class ModelType(StrEnum):
    CHECKPOINT = "checkpoint"
    VAE = "vae"
    LORA = "lora"
    EMBEDDING = "embedding"
    HYPERNETWORK = "hypernetwork"
    UNKNOWN = "unknown"


# Where the WebUI looks for each type, relative to its folder.
FOLDERS = {
    ModelType.CHECKPOINT: "models/Stable-diffusion",
    ModelType.VAE: "models/VAE",
    ModelType.LORA: "models/Lora",
    ModelType.EMBEDDING: "embeddings",
    ModelType.HYPERNETWORK: "models/hypernetworks",
}


def read_safetensors_keys(path: Path) -> list[str] | None:
    """The tensor names of a safetensors file, reading only its header (8 + N bytes)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (size,) = struct.unpack("<Q", raw)
            if size <= 1 or size > MAX_HEADER:
                return None
            header = json.loads(fh.read(size))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    return [k for k in header if k != "__metadata__"]


def classify_keys(keys: list[str]) -> ModelType:
    """Pure: the model type from tensor names (the names the WebUI's loaders expect)."""
    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    def contains(*parts: str) -> bool:
        return any(p in k for k in keys for p in parts)

    if contains("lora_up", "lora_down", "lora_A", "lora_B", "hada_w1_a", "lokr_w1",
                ".lora.", "lora_unet_", "lora_te"):
        return ModelType.LORA
    if has("model.diffusion_model.") or has("double_blocks.", "joint_blocks."):
        return ModelType.CHECKPOINT
    if has("encoder.down", "decoder.up", "encoder.conv_in", "decoder.conv_in") or (
            has("first_stage_model.") and not has("model.diffusion_model.")):
        return ModelType.VAE
    if has("emb_params", "string_to_param", "clip_l", "clip_g") and len(keys) <= 4:
        return ModelType.EMBEDDING
    if any(k.split(".")[0].isdigit() and ".linear." in k for k in keys):
        return ModelType.HYPERNETWORK
    return ModelType.UNKNOWN


def classify_file(path: Path) -> ModelType:
    if path.suffix.lower() != ".safetensors":
        return ModelType.UNKNOWN  # pickles are never loaded to find out
    keys = read_safetensors_keys(path)
    return classify_keys(keys) if keys else ModelType.UNKNOWN


def model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and p.suffix.lower() in MODEL_SUFFIXES)
