"""Import every module that registers the built-in field types, live choice sources and metric sources, and
those that answer the lower layers' registries and signals (the unit tree, a scheme put in force).

The app factory imports it first; so do the tests and the benchmarks, which check definitions without an app (the
definition check reads the names and the declared data of what it checks from the registries, server/core/
registry.py). A module of another package that registers its own entries is listed here too.
"""

from .assessment import bulletins as assessment_bulletins  # noqa: F401 - the job that draws a bulletin's PDF
from .assessment import publishing as assessment_publishing  # noqa: F401 - the job that publishes a period
from .assessment import sources as metric_sources  # noqa: F401 - case_rate, case_count, form_count, …
from .boards import printing as board_printing  # noqa: F401 - the job that prints a district's boards
from .events import metrics as event_metrics  # noqa: F401 - /metrics: deliveries waiting and failed
from .events import service as event_service  # noqa: F401 - case events and notifications into the outbox
from .forms import choices as choice_sources  # noqa: F401 - units, areas, people, categories, tiers
from .forms import fields as field_types  # noqa: F401 - text, integer, single_choice, photo, location, …
from .jobs import metrics as job_metrics  # noqa: F401 - /metrics: jobs waiting and running
from .org import service as org_service  # noqa: F401 - the unit tree for scopes; units follow the scheme
from .org import spreadsheet_jobs as org_spreadsheet_jobs  # noqa: F401 - the organisation's export and import jobs
from .patrols import service as patrol_service  # noqa: F401 - flags a record made far from its area
from .public import service as public_service  # noqa: F401 - the metric source satisfaction_rate; the case page's panel
from .workflow import ledger as workflow_ledger  # noqa: F401 - the job that exports the ledger
from .workflow import metrics as workflow_metrics  # noqa: F401 - /metrics: open cases, escalations, tick lag
from .workflow import service as workflow_service  # noqa: F401 - cases a record opens; who sees a case's photos
