"""Long work asked for on a page, as a person meets it: the form's POST leads to the job's page, a worker runs the
job (here, in this process: the tests' queue is in memory), and the job's page then says how it went and offers
its file."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import csrf_token

JOB_PAGE = re.compile(r"^/jobs/(\d+)$")
RESULT_LINK = re.compile(r'href="(/jobs/\d+/result)"')
HTMX = {"HX-Request": "true", "HX-Target": "job-status"}  # the part of a job's page htmx asks for every second


@dataclass
class Finished:
    """A job run to its end: its id, its page (as the person sees it then) and its file, if it left one."""

    job_id: int
    page: str
    content: bytes | None = None
    mimetype: str | None = None
    name: str | None = None


def start(client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, token_from: str,
          **options: Any) -> Any:
    """POST a page's form (with the page's CSRF token), as its button does: the response."""
    return client.post(url, data={"csrf_token": csrf_token(client, token_from), **(data or {})}, **options)


def run_started(client: FlaskClient, response: Any) -> Finished:
    """The job a POST started (its redirect to the job's page), run by a worker; its page and file after."""
    from server.jobs.queue import run_queued

    assert response.status_code in (302, 303), (response.status_code, response.get_data(as_text=True)[:2000])
    page_url = response.headers["Location"]
    match = JOB_PAGE.match(page_url)
    assert match, page_url
    assert "hx-trigger=\"every 1s\"" in client.get(page_url).get_data(as_text=True)  # followed while it waits
    run_queued(client.application)
    page = client.get(page_url).get_data(as_text=True)
    finished = Finished(int(match.group(1)), page)
    link = RESULT_LINK.search(page)
    if link:
        with client.get(link.group(1)) as result:  # a file response: closed here
            assert result.status_code == 200, result.status_code
            finished.content, finished.mimetype = result.data, result.mimetype
            finished.name = result.headers["Content-Disposition"].split("filename=")[-1].strip('"')
    return finished


def run_job_from(client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, token_from: str,
                 **options: Any) -> Finished:
    """Start a job from a page's form, run it, and come back to its page: what the person gets."""
    return run_started(client, start(client, url, data, token_from=token_from, **options))


def job_file(client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, token_from: str) -> bytes:
    """The file a page's button makes as a job (an export, a PDF)."""
    finished = run_job_from(client, url, data, token_from=token_from)
    assert finished.content is not None, finished.page
    return finished.content


@dataclass
class Step:
    """One report of a job's progress, and the part of its page the person saw just then."""

    done: int
    total: int
    part: str


@contextmanager
def watched(client: FlaskClient, kind: str) -> Iterator[list[Step]]:
    """While in force, each progress a registered kind reports is looked at on its job's page, as htmx asks for it
    (with `client`, whose job it must be): the steps, in order."""
    from server.jobs.service import JOB_KINDS

    entry = JOB_KINDS.remove(kind)
    steps: list[Step] = []

    def run(job: Any, user: Any, progress: Any) -> Any:
        def told(done: int, total: int) -> None:
            progress(done, total)
            steps.append(Step(done, total, client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True)))

        return entry.run(job, user, told)

    JOB_KINDS.add(kind, dataclasses.replace(entry, run=run))
    try:
        yield steps
    finally:
        JOB_KINDS.remove(kind)
        JOB_KINDS.add(kind, entry)
