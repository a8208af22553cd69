"""Definition errors that name file, line and dotted path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class DefinitionError:
    """One problem in one definition file; `line` is 1-based, `path` dotted like `units[0].name`."""

    file: str
    line: int
    path: str
    message: str
    zh: str = field(default="", compare=False)  # the message in Chinese, for the administrators' pages

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file} line {self.line}: {where}{self.message}"

    def message_in(self, language: str) -> str:
        """The message in `language` (zh or en): the Chinese one where it has been written."""
        return self.zh if language == "zh" and self.zh else self.message

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message,
                "message_zh": self.zh or self.message}


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


def expression_problem_zh(problem: str) -> str:
    """An expression's problem in Chinese, where its kind is known (the rest is said as it is, in English)."""
    for pattern, words in _EXPRESSION_ZH:
        match = pattern.match(problem)
        if match:
            hint = match.groupdict().get("hint")
            return words.format(**match.groupdict()) + (f"（是否应为“{hint}”？）" if hint else "")
    return problem


_EXPRESSION_ZH = [
    (re.compile(r"unknown name '(?P<name>.+?)'(?: \(did you mean '(?P<hint>.+?)'\?\))?$"), "未知名称“{name}”"),
    (re.compile(r"unknown function '(?P<name>.+?)'(?: \(did you mean '(?P<hint>.+?)'\?\))?$"), "未知函数“{name}”"),
    (re.compile(r"syntax error: (?P<what>.+)$"), "语法错误（{what}）"),
    (re.compile(r"(?P<what>.+ is not allowed.*)$"), "不允许的写法：{what}"),
]
