"""Definition errors that name file, line and dotted path."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel.support import Translations


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


# -- words in both languages ----------------------------------------------------------------------------------
# A definition error is written in English (the command line, logs, the English page) and in Chinese (the
# Chinese page). The words come from the app's catalogue: templates marked N_() and nouns marked _noun(), taken
# by `make messages` (pybabel -k N_ -k _noun:1c,2) and translated in messages.po like every other UI string.

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"


def N_(template: str) -> str:  # noqa: N802 - gettext's name for "mark, translate later"
    """Mark a message template for the catalogue; it is translated when said (`said`)."""
    return template


def _noun(context: str, text: str) -> str:
    """Mark a noun for the catalogue under `context` (the same English word may read otherwise elsewhere)."""
    return text


@functools.cache
def _chinese() -> Any:
    return Translations.load(str(TRANSLATIONS), ["zh_Hans_CN"])


@dataclass(frozen=True)
class Said:
    """Words to say in either language: a catalogue template (or a noun, with its context) and its values,
    which may themselves be Said."""

    template: str
    params: tuple = ()
    context: str | None = None

    def in_language(self, language: str) -> str:
        if language == "zh":
            text = (_chinese().upgettext(self.context, self.template) if self.context
                    else _chinese().ugettext(self.template))
        else:
            text = self.template
        if not self.params:
            return text
        return text % {name: v.in_language(language) if isinstance(v, Said) else v for name, v in self.params}


def say(template: str, **params: Any) -> Said:
    return Said(template, tuple(params.items()))


def noun(text: str) -> Said:
    """A noun a reference names ("unit kind"), said in either language (context "reference")."""
    return Said(text, context="reference")


def said(template: str, **params: Any) -> tuple[str, str]:
    """(English, Chinese) of a template with its values: what an error carries."""
    words = say(template, **params)
    return words.in_language("en"), words.in_language("zh")


def hint(name: str | None) -> Said | str:
    """" (did you mean 'x'?)" in either language, or nothing."""
    return say(N_(" (did you mean '%(name)s'?)"), name=name) if name else ""


def expression_problem_zh(problem: str) -> str:
    """An expression's problem in Chinese, where its kind is known (the rest is said as it is, in English)."""
    for pattern, template in _EXPRESSION_PROBLEMS:
        match = pattern.match(problem)
        if match:
            found = match.groupdict()
            return say(template, **{k: v for k, v in found.items() if k != "hint"}).in_language("zh") + (
                hint(found.get("hint")).in_language("zh") if found.get("hint") else "")
    return problem


_EXPRESSION_PROBLEMS = [
    (re.compile(r"unknown name '(?P<name>.+?)'(?: \(did you mean '(?P<hint>.+?)'\?\))?$"),
     N_("unknown name '%(name)s'")),
    (re.compile(r"unknown function '(?P<name>.+?)'(?: \(did you mean '(?P<hint>.+?)'\?\))?$"),
     N_("unknown function '%(name)s'")),
    (re.compile(r"syntax error: (?P<what>.+)$"), N_("syntax error: %(what)s")),
    (re.compile(r"(?P<what>.+ is not allowed.*)$"), N_("not allowed: %(what)s")),
    (re.compile(r"matches\(\): invalid pattern: (?P<what>.+)$"), N_("matches(): invalid pattern: %(what)s")),
]
