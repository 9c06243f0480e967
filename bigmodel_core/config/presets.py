"""Preset experiment configs shipped in assets/presets/ (one JSON config per file)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .specs import ConfigError, ExperimentConfig, parse_config

ASSETS = Path(__file__).resolve().parents[2] / "assets"
PRESET_DIR = ASSETS / "presets"


@lru_cache(maxsize=1)
def preset_descriptions() -> dict[str, str]:
    return json.loads((PRESET_DIR / "index.json").read_text())


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json") if p.stem != "index")


def load_preset(name: str) -> ExperimentConfig:
    names = preset_names()
    if name not in names:
        raise ConfigError([("preset", f"unknown preset {name!r}; choose one of: {', '.join(names)}")])
    return parse_config((PRESET_DIR / f"{name}.json").read_text())


def load_config_arg(arg: str) -> ExperimentConfig:
    """A CLI CONFIG argument: a path to a JSON file, or a preset name."""
    path = Path(arg)
    if arg.endswith(".json") or path.exists():
        if not path.is_file():
            raise ConfigError([("", f"no such config file: {arg}")])
        return parse_config(path.read_bytes())
    return load_preset(arg)
