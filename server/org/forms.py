"""Forms of the organisation pages: units, areas, posts and the spreadsheet upload."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from ..web.forms import Form

KEY = [DataRequired(), Length(max=64), Regexp(r"^[a-z][a-z0-9_]*$", message=_l(
    "Lower-case letters, digits and _ only, starting with a letter."))]
NAME = [Optional(), Length(max=4000)]


class UnitForm(Form):
    key = StringField(_l("Key"), validators=KEY, description=_l("Used in spreadsheets and links; cannot change."))
    kind = SelectField(_l("Kind"), validators=[DataRequired()])
    parent = SelectField(_l("Inside unit"), validators=[Optional()])
    name_zh = StringField(_l("Name (Chinese)"), validators=NAME)
    name_en = StringField(_l("Name (English)"), validators=NAME)
    difficulty = IntegerField(_l("Difficulty tier for rankings (1 = easiest)"),
                              validators=[Optional(), NumberRange(min=1, max=9)])
    active = BooleanField(_l("In use"), default=True)


class AreaForm(Form):
    key = StringField(_l("Key"), validators=KEY, description=_l("Used in spreadsheets and links; cannot change."))
    kind = SelectField(_l("Kind"), validators=[DataRequired()])
    parent = SelectField(_l("Inside area"), validators=[Optional()])
    unit = SelectField(_l("Responsible unit"), validators=[Optional()])
    name_zh = StringField(_l("Name (Chinese)"), validators=NAME)
    name_en = StringField(_l("Name (English)"), validators=NAME)
    from_zh = StringField(_l("From (Chinese)"), validators=NAME)
    from_en = StringField(_l("From (English)"), validators=NAME)
    to_zh = StringField(_l("To (Chinese)"), validators=NAME)
    to_en = StringField(_l("To (English)"), validators=NAME)
    length_m = FloatField(_l("Length (metres)"), validators=[Optional(), NumberRange(min=0)])
    geometry = TextAreaField(_l("Geometry (GeoJSON, longitude then latitude)"),
                             validators=[Optional(), Length(max=1_000_000)])
    description_zh = TextAreaField(_l("Description (Chinese)"), validators=NAME)
    description_en = TextAreaField(_l("Description (English)"), validators=NAME)
    active = BooleanField(_l("In use"), default=True)


class AppointForm(Form):
    tier = SelectField(_l("Tier"), validators=[DataRequired()])
    area = SelectField(_l("Over area"), validators=[Optional()])
    unit = SelectField(_l("Over unit (when not over an area)"), validators=[Optional()])
    holder_name = StringField(_l("Holder's name"), validators=[DataRequired(), Length(max=100)])
    username = StringField(_l("Their account (username, optional)"), validators=[Optional(), Length(max=64)])
    title = StringField(_l("Title"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    duties = TextAreaField(_l("Duties (one per line)"), validators=[Optional(), Length(max=20_000)])
    started_on = DateField(_l("Holds the post from"), validators=[DataRequired()])


class PostEditForm(Form):
    username = StringField(_l("Their account (username, optional)"), validators=[Optional(), Length(max=64)])
    title = StringField(_l("Title"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    duties = TextAreaField(_l("Duties (one per line)"), validators=[Optional(), Length(max=20_000)])


class PostEndForm(Form):
    ended_on = DateField(_l("Last day in the post"), validators=[DataRequired()])


class ImportForm(Form):
    upload = FileField(_l("Workbook (.xlsx) or one sheet as CSV (.csv)"), validators=[FileRequired()])
    sheet = SelectField(_l("For a CSV file: which sheet it is"), validators=[Optional()])


class PlacesForm(Form):
    upload = FileField(_l("Map file: GeoJSON, KML, or a zipped shapefile (.zip with .shp, .shx, .dbf and .prj)"),
                       validators=[FileRequired()])
    kind = SelectField(_l("Kind of the new places"), validators=[Optional()])
    parent = SelectField(_l("Inside"), validators=[Optional()])
    key_property = StringField(_l("Property holding each place's key (default: key, id or code)"),
                               validators=[Optional(), Length(max=64)])
    name_property = StringField(_l("Property holding its name (default: name or 名称)"),
                                validators=[Optional(), Length(max=64)])
