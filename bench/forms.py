"""Render and submit a 60-field form with logic through the form engine, against a plain WTForms form.

Both run in the same process on the same 60 fields (text, numbers, choices, dates); the plain form has
no logic. Prints milliseconds per render and per submit, and the engine's ratio to the plain form.
Target: the engine's overhead stays under 2x.

Run: .venv/bin/python bench/forms.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import render_template_string  # noqa: E402
from flask_login import AnonymousUserMixin  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402
from wtforms import DateField, DecimalField, IntegerField, SelectField, StringField  # noqa: E402
from wtforms.validators import NumberRange, Optional  # noqa: E402

from server import create_app  # noqa: E402
from server.forms import service  # noqa: E402
from server.forms.engine import form_spec  # noqa: E402
from server.web.forms import Form  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from common import median_seconds  # noqa: E402

KINDS = ["text", "integer", "decimal", "single_choice", "date"]
CHOICES = [{"value": v, "label": v.upper()} for v in ("a", "b", "c", "d")]


def definition() -> dict:
    fields = []
    for i in range(60):
        kind = KINDS[i % len(KINDS)]
        field: dict = {"id": f"f{i}", "type": kind, "label": {"zh": f"字段{i}", "en": f"Field {i}"}}
        if kind == "single_choice":
            field["choices"] = CHOICES
        if kind in ("integer", "decimal"):
            field.update(min=0, max=1000)
            field["constraints"] = [{"check": "value >= 0", "message": "≥ 0"}]
        if i % 3 == 1 and i > 5:  # a third of the fields depend on an earlier one
            field["visible_if"] = f"f{i - 3} is not None"
        if i % 7 == 0 and i > 0:
            field["required_if"] = f"f{i - 2} == 'a'" if KINDS[(i - 2) % 5] == "single_choice" else "f1 is not None"
        if i % 10 == 9:
            field["calculate"] = "coalesce(f1, 0) * 2"
            field["type"] = "integer"
        fields.append(field)
    return {"kind": "form", "id": "bench", "name": "bench", "fields": fields}


def submitted() -> MultiDict:
    data = MultiDict({"_token": "bench-token", "_action": "submit"})
    for i in range(60):
        kind = KINDS[i % len(KINDS)]
        data[f"f{i}"] = {"text": "some text", "integer": "12", "decimal": "3.5", "single_choice": "b",
                         "date": "2026-11-20"}[kind]
    return data


def plain_class() -> type[Form]:
    attrs = {}
    for i in range(60):
        kind = KINDS[i % len(KINDS)]
        if kind == "text":
            attrs[f"f{i}"] = StringField(f"Field {i}", validators=[Optional()])
        elif kind == "integer":
            attrs[f"f{i}"] = IntegerField(f"Field {i}", validators=[Optional(), NumberRange(0, 1000)])
        elif kind == "decimal":
            attrs[f"f{i}"] = DecimalField(f"Field {i}", validators=[Optional(), NumberRange(0, 1000)])
        elif kind == "single_choice":
            attrs[f"f{i}"] = SelectField(f"Field {i}", choices=[(c["value"], c["label"]) for c in CHOICES])
        else:
            attrs[f"f{i}"] = DateField(f"Field {i}", validators=[Optional()])
    return type("Plain", (Form,), attrs)


PLAIN_TEMPLATE = """<form method="post">{{ form.csrf_token }}{% for field in form if field.name != 'csrf_token' %}
<div class="field">{{ field.label }}{{ field() }}{% for e in field.errors %}<p>{{ e }}</p>{% endfor %}</div>
{% endfor %}<button>submit</button></form>"""


def timed(fn, repeat: int = 30) -> float:  # noqa: ANN001
    return median_seconds(fn, repeat)  # after one warm-up run: templates and expressions compile once


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="fangan-bench-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}", "SECRET_KEY": "bench",
                      "WTF_CSRF_ENABLED": False, "TESTING": True})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    spec = form_spec(definition())
    plain = plain_class()
    user = AnonymousUserMixin()

    with app.test_request_context("/bench", method="POST", data=submitted()):
        from flask import render_template, request

        def plain_render() -> str:
            return render_template_string(PLAIN_TEMPLATE, form=plain(formdata=None))

        def engine_render() -> str:
            page = service.open_form(user, "", spec, None)
            page.action_url = "/bench"
            return render_template("forms/_body.html", page=page, action_url="/bench", preview=True)

        def plain_submit() -> bool:
            return plain(formdata=request.form).validate()

        def engine_submit() -> object:
            return service.post_form(user, "", spec, None, request.form, "submit", store=False)

        page = engine_submit()
        assert not page.errors, page.errors  # the benchmark's data is valid: it measures a full check
        results = [("render", timed(plain_render), timed(engine_render)),
                   ("submit", timed(plain_submit), timed(engine_submit))]
    print("60-field form, median of 30 runs (plain WTForms = bare baseline, no logic)")
    for name, base, ours in results:
        print(f"  {name:<7} plain {base * 1000:7.2f} ms   engine {ours * 1000:7.2f} ms   ratio {ours / base:4.2f}x")


if __name__ == "__main__":
    main()
