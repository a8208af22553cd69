"""Definition errors that name file, line and dotted path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class DefinitionError:
    """One problem in one definition file; `line` is 1-based, `path` dotted like `units[0].name`."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file} line {self.line}: {where}{self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


class DefinitionsInvalid(Exception):
    """Raised when a set of definitions has errors; carries all of them."""

    def __init__(self, errors: Iterable[DefinitionError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def format_path(parts: Iterable[str | int]) -> str:
    """Render a path as `a.b[2].c`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
