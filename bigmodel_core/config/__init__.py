"""The experiment config: the pydantic specs every part shares, dotted paths, presets and lessons."""
