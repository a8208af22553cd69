"""Render and submit a 60-field form with logic through the form engine, against a plain WTForms form.

Both run in the same process on the same 60 fields (text, numbers, choices as radio buttons, dates) and
render the same widgets; the plain form has no logic, and its template is compiled once, as Flask keeps a
file's. Warm (each runs once first), timed turn about; prints p50 and p95 per render and per submit, and the
engine's ratio to the plain form. Target (issue 18): under 1.5x.

Run: .venv/bin/python bench/forms.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_login import AnonymousUserMixin  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402
from wtforms import DateField, DecimalField, IntegerField, RadioField, StringField  # noqa: E402
from wtforms.validators import NumberRange, Optional  # noqa: E402

from server import create_app  # noqa: E402
from server.forms import service  # noqa: E402
from server.forms.engine import form_spec  # noqa: E402
from server.web.forms import Form  # noqa: E402

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
            # Radio buttons, as the engine draws up to 6 fixed choices on a phone: the same widgets to render.
            attrs[f"f{i}"] = RadioField(f"Field {i}", choices=[(c["value"], c["label"]) for c in CHOICES])
        else:
            attrs[f"f{i}"] = DateField(f"Field {i}", validators=[Optional()])
    return type("Plain", (Form,), attrs)


PLAIN_TEMPLATE = """<form method="post">{{ form.csrf_token }}{% for field in form if field.name != 'csrf_token' %}
<div class="field">{{ field.label }}{{ field() }}{% for e in field.errors %}<p>{{ e }}</p>{% endfor %}</div>
{% endfor %}<button>submit</button></form>"""


def timed(ours, bare, runs: int = 200) -> tuple[tuple[float, float], tuple[float, float]]:  # noqa: ANN001
    """(p50, p95) in seconds of the plain form and of the engine, timed turn about after a warm-up run of each
    (templates and expressions compile once), so that the machine's moments of load fall on both alike."""
    ours(), bare()
    mine, theirs = [], []
    for _ in range(runs):
        for fn, out in ((bare, theirs), (ours, mine)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return percentiles(theirs), percentiles(mine)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


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

        plain_template = app.jinja_env.from_string(PLAIN_TEMPLATE)  # compiled once, as Flask keeps a file's

        def plain_render() -> str:
            return plain_template.render(form=plain(formdata=None))

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
        results = [("render", *timed(engine_render, plain_render)), ("submit", *timed(engine_submit, plain_submit))]
    fields = definition()["fields"]
    rules = sum(1 for f in fields if "visible_if" in f or "required_if" in f or "constraints" in f)
    print(f"a {len(fields)}-field form ({rules} with rules, {sum(1 for f in fields if 'calculate' in f)} calculated), "
          "warm, 200 runs each, turn about (plain WTForms = bare baseline, same widgets, no logic); target < 1.5x")
    for name, (b50, b95), (o50, o95) in results:
        print(f"  {name:<7} plain p50 {b50 * 1000:6.2f} ms p95 {b95 * 1000:6.2f} ms   engine p50 {o50 * 1000:6.2f} ms "
              f"p95 {o95 * 1000:6.2f} ms   ratio p50 {o50 / b50:4.2f}x p95 {o95 / b95:4.2f}x")


if __name__ == "__main__":
    main()
