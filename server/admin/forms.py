"""Admin forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import StringField
from wtforms.validators import Length, Optional


class SchemeUploadForm(FlaskForm):
    files = MultipleFileField(_l("Scheme files (YAML, JSON or one zip)"))
    note = StringField(_l("Note (what changed)"), validators=[Optional(), Length(max=500)])


class ActivateForm(FlaskForm):
    """Only the CSRF token: activation is a POST."""
