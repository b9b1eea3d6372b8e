"""The shipped default edge.toml is generated from the Config tree and never drifts from it."""

from __future__ import annotations

import re
import tomllib

from pydantic import BaseModel

from edge.config import Config, parse_config
from edge.config_doc import default_toml
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "firmware_config" / "edge.toml"


def test_shipped_file_is_up_to_date() -> None:
    """firmware_config/edge.toml equals the generator's output; regenerate it when this fails:
    `.venv/bin/python -m edge.config_doc > firmware_config/edge.toml`."""
    assert SHIPPED.read_text(encoding="utf-8") == default_toml(), (
        "firmware_config/edge.toml is stale: run "
        "`.venv/bin/python -m edge.config_doc > firmware_config/edge.toml`"
    )


def test_every_key_is_documented() -> None:
    """Each field of each section appears, commented, with a description line above it."""
    text = default_toml()

    def check(name: str, model: type[BaseModel]) -> None:
        assert f"[{name}]" in text
        for key, info in model.model_fields.items():
            sub = info.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                check(f"{name}.{key}", sub)
            else:
                assert re.search(rf"^# {key}( = |: not set)", text, re.M), f"{name}.{key}"

    for section_name, section_field in Config.model_fields.items():
        model = section_field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        check(section_name, model)


def test_uncommented_file_is_the_defaults() -> None:
    """Uncommenting every `# key = value` line gives a valid file equal to the defaults."""
    lines = []
    for line in default_toml().splitlines():
        if re.match(r"^# [a-z_]+ = ", line):
            lines.append(line[2:])
        elif line.startswith("["):
            lines.append(line)
    config = parse_config(tomllib.loads("\n".join(lines)))
    assert config.model_dump() == Config().model_dump()


def test_changed_default_shows_as_drift() -> None:
    """A different tree renders differently (the drift test can fail)."""
    changed = Config()
    changed.kiosk.port = 8181
    assert "# port = 8181" in default_toml(changed)
    assert default_toml(changed) != default_toml()
