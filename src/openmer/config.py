"""Base class of every openmer configuration: pydantic, strict, frozen, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from openmer.errors import ConfigError


class OpenmerConfig(BaseModel):
    """Strict, immutable configuration.

    ``extra="forbid"`` makes a misspelt option an error (a :class:`~openmer.errors.ConfigError`
    when built through :meth:`from_dict` / :meth:`from_json`). Every config carries
    ``schema_version`` so that a stored file can be traced and migrated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    schema_version: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build and validate from a plain dict.

        Raises:
            ConfigError: on an unknown key or an invalid value (the message lists them).
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of every field."""
        return self.model_dump(mode="json")

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            from openmer.files import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Self:
        """Read from a JSON file path or a JSON string.

        Raises:
            ConfigError: the file is missing, is not JSON, or does not validate.
        """
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            path = Path(path_or_text)
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found")
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
