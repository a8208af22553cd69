"""Scheme management for people: load and activate a scheme once `auth/permissions.py` says they may.

`definitions` stores and activates without asking (it is the language and its store, below `auth`); the CLI,
run by whoever runs the server, calls it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions import drafts
from ..definitions import service as definitions
from ..definitions.models import SchemeVersion

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# The kinds with an editor of their own (static/js/editors.js draws each); every kind has the source editor.
EDITORS = frozenset({"scheme", "patrol_rules", "form", "score_sheet", "workflow"})


def load_scheme(files: Mapping[str, str], user: AnyUser, note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Check and store a scheme as a new version, if the user may load it; return (version, created)."""
    bundle = definitions.check_scheme_files(files)
    if not permissions.can_load_scheme(user, definitions.existing_key(bundle.id)):
        raise PermissionDenied(_("You may not load this scheme."))
    return definitions.load_scheme(bundle, user, note=note)


def _may_change(user: AnyUser, version: SchemeVersion) -> None:
    if not permissions.can_load_scheme(user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not change this scheme."))


def save_definition(user: AnyUser, version: SchemeVersion, kind: str, key: str, data: dict,
                    note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Write an edited definition into its file (keeping the rest of the file as it is) and store the result as
    a draft on top of `version`."""
    _may_change(user, version)
    source = drafts.definition_file(version, kind, key)
    return drafts.store_draft(version, {source.path: drafts.rewritten(source, data)}, user, note)


def save_scheme_file(user: AnyUser, version: SchemeVersion, path: str, data: bytes,
                     note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Store `version` with one file replaced or added (an edited source, an uploaded file) as a draft."""
    _may_change(user, version)
    return drafts.store_draft(version, {path: data}, user, note)


def activate_scheme_version(version_id: int, user: AnyUser) -> SchemeVersion:
    """Put a stored version in force, if the user may load its scheme."""
    version = definitions.get_scheme_version(version_id)
    if not permissions.can_load_scheme(user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not activate this scheme."))
    return definitions.activate_scheme_version(version_id, user)
