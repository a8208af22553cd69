"""Uploads leave nothing behind: the files of a refused, failed or rolled-back submission are removed with its
transaction; `fangan uploads gc` removes files no row refers to (not young ones, not with --dry-run); PDFs
that carry scripts or other files are refused."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage

from server.extensions import db
from server.forms import service as forms
from server.forms.models import Upload
from server.forms.uploads import FileStore, UploadRejected, check_upload
from server.public.models import PublicReport
from tests.integration.test_api import bearer, new_client, patrol
from tests.integration.test_forms import _base, _hidden
from tests.integration.test_public import _report
from tests.support.clock import NOW, TODAY
from tests.support.factories import load_demo, login, make_user
from tests.support.images import jpeg
from tests.support.pdfs import pdf_with_attachment, pdf_with_javascript, plain_pdf


@pytest.fixture
def folder(app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty upload folder of this test's own (the session's is shared, and rolled-back tests' rows are gone)."""
    root = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "FANGAN_UPLOAD_DIR", str(root))
    return root


def stored(root: Path) -> list[str]:
    """Every file under the folder, leftovers and all."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def aged(path: Path, age: dt.timedelta) -> None:
    moment = (NOW - age).timestamp()
    os.utime(path, (moment, moment))


def photo(color: str = "red", name: str = "p.jpg") -> FileStorage:
    return FileStorage(io.BytesIO(jpeg(color=color)), filename=name, content_type="image/jpeg")


# -- the transaction decides --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["rollback", "close", "savepoint"])
def test_a_transaction_that_raises_after_storing_leaves_no_file(ctx, folder, ending):
    user = make_user("filer")
    kept = forms.store_upload(user, photo(), "earlier", "photos").id  # committed before: stays
    db.session.commit()
    first = stored(folder)
    with pytest.raises(RuntimeError):  # the failure comes after the store, as in a service
        if ending == "savepoint":
            with db.session.begin_nested():
                forms.store_upload(user, photo("green"), "try", "photos")
                assert len(stored(folder)) == 2
                raise RuntimeError("after storing")
        else:
            forms.store_upload(user, photo("green"), "try", "photos")
            assert len(stored(folder)) == 2
            raise RuntimeError("after storing")
    if ending == "rollback":
        db.session.rollback()
    elif ending == "close":
        db.session.close()  # as the request's teardown does when a view raised
    assert stored(folder) == first
    assert db.session.get(Upload, kept) is not None


def test_a_released_savepoint_keeps_its_files_until_the_transaction_decides(ctx, folder):
    user = make_user("filer")
    db.session.commit()
    with db.session.begin_nested():
        forms.store_upload(user, photo(), "one", "photos")
    with db.session.begin_nested():
        forms.store_upload(user, photo("green"), "two", "photos")
    assert len(stored(folder)) == 2
    db.session.rollback()
    assert stored(folder) == []
    forms.store_upload(user, photo(), "three", "photos")
    db.session.commit()
    db.session.rollback()  # nothing left to undo: the commit kept it
    assert len(stored(folder)) == 1


def test_the_same_bytes_wanted_by_another_request_survive_a_rollback(ctx, folder):
    user = make_user("filer")
    db.session.commit()
    forms.store_upload(user, photo(), "mine", "photos")
    forms.store_upload(user, photo(), "mine", "photos")  # one photo twice: still this request's
    db.session.rollback()
    assert stored(folder) == []
    forms.store_upload(user, photo(), "mine", "photos")
    FileStore(folder).save(check_upload(photo().read(), "p.jpg"))  # a twin request stores the same photo
    db.session.rollback()
    assert len(stored(folder)) == 1  # the twin may commit a row for it


# -- refused submissions ------------------------------------------------------------------------------------------


@pytest.fixture
def district(app, folder):
    app.config["FANGAN_OPEN311_KEYS"] = {"xyz": "sample-client"}
    app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with app.app_context():
        load_demo()
    yield app
    app.config.pop("FANGAN_OPEN311_KEYS", None)
    app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


def _count(model) -> int:  # noqa: ANN001
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_a_refused_public_report_with_a_photo_leaves_no_file(district, folder):
    client = district.test_client()

    def send(**extra: str):  # noqa: ANN202
        return client.post("/open311/v2/requests.json", content_type="multipart/form-data", data={
            "api_key": "xyz", "service_code": "street_stalls", "address_id": "shilong_old_street",
            "media": (io.BytesIO(jpeg(color="brown")), "stall.jpg"), **extra})

    refused = send()  # no description
    assert refused.status_code == 400 and "问题描述" in refused.get_json()[0]["description"]
    assert stored(folder) == []
    assert send(description="占道经营").status_code == 200
    assert len(stored(folder)) == 1  # the same photo, once accepted


def test_a_public_report_that_fails_after_its_photo_was_stored_leaves_no_file(district, folder, monkeypatch):
    from server.workflow import service as workflow

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("routing failed")

    monkeypatch.setattr(workflow, "open_case", broken)
    client = district.test_client()
    with pytest.raises(RuntimeError, match="routing failed"):
        _report(client)
    assert stored(folder) == []
    with district.app_context():
        assert _count(PublicReport) == 0


def test_a_form_submission_that_fails_validation_leaves_no_file(district, folder):
    client = district.test_client()
    with district.app_context():
        token = new_client("reporter", ("lidu", "staff", "shilong"))
    body = patrol(area="no_such_road")
    body["values"]["photos"] = [{"name": "p.jpg", "content": base64.b64encode(jpeg(color="navy")).decode()}]
    url = "/api/v1/schemes/lidu/forms/patrol_log/submissions"
    response = client.post(url, json=body, headers=bearer(token))
    assert response.status_code == 422 and "area" in response.get_json()["error"]["fields"]
    assert stored(folder) == []
    body["values"]["area"] = "shilong_old_street"
    assert client.post(url, json=body, headers=bearer(token)).status_code == 201
    assert len(stored(folder)) == 1


def test_a_refused_page_keeps_its_photo_for_the_next_try_and_the_sweep_leaves_it(district, folder):
    """The form page keeps a refused form's photos as pending uploads (no need to pick them again): a row
    names them, so they are not orphans."""
    client = district.test_client()
    with district.app_context():
        make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    page = client.get("/f/lidu/patrol_log/new").get_data(as_text=True)
    data = {**_base(page), "area": "", "photos": [(io.BytesIO(jpeg(color="olive")), "a.jpg")]}
    response = client.post("/f/lidu/patrol_log/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    (kept,) = stored(folder)
    aged(folder / kept, dt.timedelta(days=1))
    with district.app_context():
        sweep = forms.remove_orphan_files()
    assert (sweep.orphans, sweep.in_use, sweep.abandoned) == ([], 1, 0) and stored(folder) == [kept]


def test_a_refused_pages_photo_abandoned_for_a_day_is_let_go_and_evidence_of_saved_marks_stays(district, folder):
    """Pending uploads are kept for the next try only so long: a day after the page was refused (its form has
    long expired) the sweep removes the row and the file. Evidence photos named by saved marks stay; evidence
    of marks never saved goes the same way."""
    from server.assessment import service as assessment
    from server.assessment.views import EVIDENCE
    from server.org.models import Unit
    from tests.integration.test_assessment import OCTOBER

    with district.app_context():
        chief = make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        rater = make_user("rater", roles=(("lidu", "assessor", None),))
        abandoned = forms.store_upload(chief, photo("olive"), "render-token", "photos")
        period = assessment.open_period(office, "lidu", "lidu_monthly", OCTOBER)
        shilong = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
        token = f"{EVIDENCE}{period.id}-{shilong.id}"
        saved = forms.store_upload(rater, photo("navy"), token, "hotspots")
        unsaved = forms.store_upload(rater, photo("teal"), token, "hotspots")
        assessment.enter_marks(rater, period, shilong, "hotspots", {"below_quality": 1}, "资料不全",
                               evidence=[saved.id])
        for upload in (abandoned, saved, unsaved):
            upload.created_at = NOW - dt.timedelta(days=2)
        db.session.commit()
        files = {u.id: FileStore(folder).relative_path(u.sha256, u.extension) for u in (abandoned, saved, unsaved)}
        ids = (abandoned.id, saved.id, unsaved.id)
    for relative in files.values():
        aged(folder / relative, dt.timedelta(days=2))
    with district.app_context():
        assert forms.remove_orphan_files(dry_run=True).abandoned == 2
        assert len(stored(folder)) == 3  # a dry run removes nothing
        assert forms.remove_orphan_files(pending_older_than=dt.timedelta(days=3)).abandoned == 0  # not yet
        sweep = forms.remove_orphan_files()
        assert sweep.abandoned == 2 and len(sweep.orphans) == 2
        assert [db.session.get(Upload, i) is not None for i in ids] == [False, True, False]
    assert stored(folder) == [files[ids[1]]]


# -- the sweep ----------------------------------------------------------------------------------------------------


def _plant(root: Path, sha: str, age: dt.timedelta, extension: str = "jpg") -> str:
    relative = f"{sha[:2]}/{sha[2:4]}/{sha}.{extension}"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff" + sha.encode())
    aged(path, age)
    return relative


def test_uploads_gc_removes_orphans_and_keeps_referenced_and_young_files(ctx, folder):
    user = make_user("filer")
    referenced = forms.store_upload(user, photo(), "kept", "photos")
    db.session.commit()
    in_use = FileStore(folder).relative_path(referenced.sha256, referenced.extension)
    aged(folder / in_use, dt.timedelta(days=30))
    orphan = _plant(folder, "ab" * 32, dt.timedelta(hours=2))
    # Another extension of a referenced hash is not referenced.
    other_kind = _plant(folder, referenced.sha256, dt.timedelta(hours=2), extension="png")
    young = _plant(folder, "cd" * 32, dt.timedelta(minutes=10))
    leftover = f"{orphan.rsplit('/', 1)[0]}/.tmp-interrupted.jpg"
    (folder / leftover).write_bytes(b"half")
    aged(folder / leftover, dt.timedelta(days=2))
    (folder / "README").write_text("not the store's")
    aged(folder / "README", dt.timedelta(days=400))
    everything = stored(folder)
    runner = ctx.test_cli_runner()

    dry = runner.invoke(args=["uploads", "gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert stored(folder) == everything  # a dry run removes nothing
    for relative in (orphan, other_kind, leftover):
        assert relative in dry.output
    assert in_use not in dry.output and young not in dry.output
    assert "3 orphan file(s)" in dry.output and "would be removed" in dry.output

    result = runner.invoke(args=["uploads", "gc"])
    assert result.exit_code == 0, result.output
    assert "3 orphan file(s)" in result.output and "1 in use" in result.output
    assert "1 younger than 60 min" in result.output
    assert stored(folder) == sorted([in_use, young, "README"])
    assert FileStore(folder).read(referenced.sha256, referenced.extension)

    sooner = runner.invoke(args=["uploads", "gc", "--older-than", "5"])
    assert sooner.exit_code == 0 and young in sooner.output
    assert stored(folder) == sorted([in_use, "README"])
    assert runner.invoke(args=["uploads", "gc", "--older-than", "0"]).exit_code != 0  # the grace is not optional


def test_a_file_claimed_during_the_sweep_is_kept(ctx, folder, monkeypatch):
    orphan = _plant(folder, "ef" * 32, dt.timedelta(hours=5))
    real = FileStore.discard

    def claimed_meanwhile(store, relative, keep=None):  # noqa: ANN001 - the same bytes saved again just now
        aged(folder / relative, dt.timedelta(0))
        return real(store, relative, keep)

    monkeypatch.setattr(FileStore, "discard", claimed_meanwhile)
    sweep = forms.remove_orphan_files()
    assert (sweep.orphans, sweep.in_use) == ([], 1)
    assert stored(folder) == [orphan]


# -- PDFs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pdf", "code"), [
    (pdf_with_javascript(), "pdf_script"),
    (pdf_with_attachment(), "pdf_embedded"),
], ids=["javascript", "attachment"])
def test_pdfs_with_scripts_or_embedded_files_are_refused_and_plain_ones_kept(district, folder, pdf, code):
    client = district.test_client()
    with district.app_context():
        make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    url = "/f/lidu/evidence/new"

    def send(document: bytes):  # noqa: ANN202
        page = client.get(url).get_data(as_text=True)
        data = {"csrf_token": _hidden(page, "csrf_token"), "_token": _hidden(page, "_token"), "_action": "submit",
                "unit": "shilong", "period_month": TODAY.isoformat(), "item": "马路办公台账",
                "documents": [(io.BytesIO(document), "ledger.pdf")]}
        return client.post(url, data=data, content_type="multipart/form-data")

    refused = send(pdf)
    assert refused.status_code == 400
    with district.test_request_context(url):  # the page's language
        message = forms.upload_message(UploadRejected(code))
    assert f"ledger.pdf: {html.escape(message, quote=False)}" in refused.get_data(as_text=True)
    assert stored(folder) == []
    with district.app_context():
        assert _count(Upload) == 0
    accepted = send(plain_pdf())
    assert accepted.status_code == 303, accepted.get_data(as_text=True)
    assert [p.rsplit(".", 1)[1] for p in stored(folder)] == ["pdf"]
