"""Admin forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from ..web.forms import Form as FlaskForm


class SchemeUploadForm(FlaskForm):
    files = MultipleFileField(_l("Scheme files (YAML, JSON or one zip)"))
    note = StringField(_l("Note (what changed)"), validators=[Optional(), Length(max=500)])


class SchemeFileForm(FlaskForm):
    file = FileField(_l("One changed or new file (YAML or JSON)"), validators=[FileRequired()])
    note = StringField(_l("Note (what changed)"), validators=[Optional(), Length(max=500)])


class NewSchemeForm(FlaskForm):
    template = SelectField(_l("Start from"), validators=[DataRequired()])
    key = StringField(_l("The district's id (letters, digits and _)"), validators=[
        DataRequired(), Length(max=64), Regexp(r"^[a-z][a-z0-9_]*$", message=_l(
            "Small letters, digits and _ only, beginning with a letter."))])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    short_zh = StringField(_l("Short name (Chinese)"), validators=[DataRequired(), Length(max=100)])
    short_en = StringField(_l("Short name (English)"), validators=[Optional(), Length(max=100)])


class OrgSheetsForm(FlaskForm):
    workbook = FileField(_l("The organisation workbook (.xlsx with the sheets units and areas) or one CSV sheet"),
                         validators=[FileRequired()])


class CsrfForm(FlaskForm):
    """Only the CSRF token: for buttons that POST an action (activate, reset, block)."""


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64),
                                                       Regexp(r"^[A-Za-z0-9_.@-]+$", message=_l(
                                                           "Letters, digits and . _ @ - only."))])
    display_name = StringField(_l("Name shown"), validators=[DataRequired(), Length(max=100)])
    is_admin = BooleanField(_l("System administrator (every district)"))


class RoleGrantForm(FlaskForm):
    scheme_role = SelectField(_l("Role"), validators=[DataRequired()])
    unit = SelectField(_l("From unit"), validators=[Optional()])


class XlsformUploadForm(FlaskForm):
    workbook = FileField(_l("XLSForm workbook (.xlsx or .xls)"), validators=[FileRequired()])
    attachments = MultipleFileField(_l("Files the workbook names (CSV for select_one_from_file)"))
    strict = BooleanField(_l("Refuse the workbook if anything would be left out"))
    form_id = StringField(_l("Form id (optional)"), validators=[Optional(), Length(max=64),
                                                               Regexp(r"^[a-z][a-z0-9_]*$", message=_l(
                                                                   "Lower-case letters, digits and _ only."))])


class CalendarImportForm(FlaskForm):
    """A year's table as a file; the preview sends the file's content back with the confirmation."""

    upload = FileField(_l("The year's holidays and makeup workdays (CSV, XLSX, YAML or iCalendar .ics)"))
    content = HiddenField()
    filename = HiddenField()


class CalendarDayForm(FlaskForm):
    day = DateField(_l("Day"), validators=[DataRequired()])
    working = BooleanField(_l("A working day (a makeup day); unticked: a holiday"))
    name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])


class ReporterRequestForm(FlaskForm):
    """A public reporter's request about their data: found by their phone number or one of their tracking codes."""

    scheme = SelectField(_l("District"), validators=[DataRequired()])
    phone = StringField(_l("Their phone number"), validators=[Optional(), Length(max=40)])
    code = StringField(_l("Or one of their tracking codes"), validators=[Optional(), Length(max=40)])
    confirm = BooleanField(_l("Yes: erase this reporter's name, phone and follow-up note from these reports"))

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001 - WTForms' signature
        ok = super().validate(extra_validators)
        if ok and not ((self.phone.data or "").strip() or (self.code.data or "").strip()):
            self.phone.errors = [*self.phone.errors, _l("Give their phone number or a tracking code.")]
            return False
        return ok
