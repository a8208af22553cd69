"""Import every package's models in one place, for metadata and migrations."""

from .api.models import ApiClient  # noqa: F401
from .assessment.models import (  # noqa: F401
    AssessmentAppeal,
    AssessmentEntry,
    AssessmentPeriod,
    AssessmentRevision,
    AssessmentScore,
)
from .audit.models import AuditEntry  # noqa: F401
from .auth.models import RoleAssignment, User  # noqa: F401
from .calendar.models import CalendarDay  # noqa: F401
from .definitions.models import DefinitionVersion, SchemeRecord, SchemeVersion  # noqa: F401
from .events.models import OutboxDelivery, OutboxEvent  # noqa: F401
from .forms.models import Submission, Upload  # noqa: F401
from .jobs.models import Job  # noqa: F401
from .org.models import Area, Post, Unit  # noqa: F401
from .public.models import PublicReport  # noqa: F401
from .workflow.models import Case, CaseDeadline, CaseEvent, EscalationApplied, Notification  # noqa: F401
