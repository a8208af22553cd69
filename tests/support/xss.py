"""An XSS payload planted in texts, and how to tell it was shown as text (escaped) and never as markup."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from markupsafe import escape
from ruamel.yaml import YAML

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"
SHORT = "<img src=x onerror=alert(2)>\"'&"  # for fields of 50 characters or fewer
RAW = ("<script>alert(1)</script>", "<img src=x onerror")  # markup that must never reach a page as markup

ROOT = Path(__file__).resolve().parents[2]

# Keys whose string values are always texts shown to people; and keys that are texts only when bilingual
# objects (elsewhere the same key holds an id: a transition's `from`, an area's `unit`).
TEXT_KEYS = {"name", "short_name", "description", "issued_by", "held_by", "title", "subtitle", "footer", "label",
             "hint", "criteria", "evidence", "public_name", "submit_label", "message", "duties"}
OBJECT_KEYS = {"from", "to", "unit"}
ID_MAPS = {"fill", "open311"}  # field id → field id: a key named like a text holds an id there


def planted(tag: str, payload: str = PAYLOAD) -> str:
    """What is typed: a tag naming the place, then the payload."""
    return f"[{tag}]{payload}"


def shown(tag: str, payload: str = PAYLOAD) -> str:
    """How a page shows it when it is escaped (as Jinja and WTForms escape), up to the quotes (which a page showing
    a definition's JSON source writes as `\\"`)."""
    return str(escape(planted(tag, payload.split('"')[0])))


def _text(value: Any, tag: str) -> Any:
    if isinstance(value, str):
        return value + planted(tag)
    if isinstance(value, dict) and value and set(value) <= {"zh", "en"}:
        return {lang: part + planted(tag) for lang, part in value.items()}
    return value


def poison(data: Any, kind: str, lists: tuple[str, ...] = ()) -> Any:
    """Every text of a definition with the payload appended, tagged `<kind>:<lists>.<key>` (the names of the lists
    it sits in: `scheme:units.children.name` is a unit inside another unit)."""
    if isinstance(data, list):
        return [poison(item, kind, lists) for item in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        tag = f"{kind}:{'.'.join(lists)}{'.' if lists else ''}{key}"
        if key in ID_MAPS:
            out[key] = value
        elif key == "duties" and isinstance(value, list):
            out[key] = [_text(item, tag) for item in value]
        elif key in TEXT_KEYS or (key in OBJECT_KEYS and isinstance(value, dict)):
            text = _text(value, tag)
            out[key] = text if text is not value else poison(value, kind, (*lists, key))
        else:
            out[key] = poison(value, kind, (*lists, key) if isinstance(value, list) else lists)
    return out


def poisoned_lidu() -> bytes:
    """The demo district and every built-in definition (forms, workflows, category lists) with the payload in each
    text, as a zip of JSON files: the scheme's own copies override the built-ins of the same id."""
    from server.definitions.bundle import library_files, read_folder

    yaml = YAML(typ="safe")
    files = {**{f"lidu/{k}": v for k, v in read_folder(ROOT / "schemes" / "lidu").items()},
             **{f"lidu/{k}": v for k, v in library_files(ROOT).items()}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            data = yaml.load(text)
            archive.writestr(re.sub(r"\.ya?ml$", ".json", name), json.dumps(poison(data, data["kind"]),
                                                                              ensure_ascii=False, indent=1))
    return buffer.getvalue()


def problems(html: str, tags: list[str], *, payload: str = PAYLOAD) -> list[str]:
    """What is wrong with a page: markup of the payload left unescaped, or a planted text missing (so a page that
    simply dropped the text would not pass)."""
    out = [f"unescaped {raw!r}" for raw in RAW if raw in html]
    out += [f"missing {tag}" for tag in tags if shown(tag, payload) not in html]
    return out


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)
