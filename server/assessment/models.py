"""Assessment periods, assessors' entries, appeals and published scores (with their revisions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db


class AssessmentPeriod(db.Model):
    """One sheet's period in a district (October 2026 on the monthly sheet), under the sheet version it opened
    with: `open` while assessors enter, `appeal` while units may appeal, `published` once frozen."""

    __tablename__ = "assessment_periods"
    __table_args__ = (UniqueConstraint("scheme_key", "sheet_key", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    sheet_key: Mapped[str] = mapped_column(String(64))
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"))
    period_key: Mapped[str] = mapped_column(String(16))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="open")
    appeal_until: Mapped[dt.date | None] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # the published revision in force; 0: none yet
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Bumped by every change, so that two offices acting on one stale page cannot both win.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    definition_version = relationship("DefinitionVersion")
    entries: Mapped[list[AssessmentEntry]] = relationship(back_populates="period", order_by="AssessmentEntry.id")
    revisions: Mapped[list[AssessmentRevision]] = relationship(back_populates="period",
                                                               order_by="AssessmentRevision.number")

    __mapper_args__ = {"version_id_col": version}

    @property
    def provisional(self) -> bool:
        """Whether the results in force (the latest revision) are provisional."""
        return any(r.number == self.revision and r.provisional for r in self.revisions)


class AssessmentEntry(db.Model):
    """What one assessor gave one unit on one item: numbers per rule, a reason and evidence photos."""

    __tablename__ = "assessment_entries"
    # One live entry per assessor, unit and item (superseded ones are kept, one per revision): NULLs are
    # distinct in a plain unique key, so the live one has its own partial index.
    __table_args__ = (UniqueConstraint("period_id", "unit_id", "item_key", "assessor_id", "superseded_in"),
                      Index("uq_assessment_entries_live", "period_id", "unit_id", "item_key", "assessor_id",
                            unique=True, postgresql_where=text("superseded_in IS NULL"),
                            sqlite_where=text("superseded_in IS NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("assessment_periods.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(64))
    assessor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role_key: Mapped[str | None] = mapped_column(String(64))
    values: Mapped[dict] = mapped_column(JsonType)
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list | None] = mapped_column(JsonType)  # upload ids
    entered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # A correction keeps the marks it replaces: they count up to this revision and no further.
    superseded_in: Mapped[int | None] = mapped_column(Integer)

    period: Mapped[AssessmentPeriod] = relationship(back_populates="entries")
    unit = relationship("Unit")
    assessor = relationship("User")


class AssessmentRevision(db.Model):
    """A published state of a period: revision 1 at publication, later ones for corrections (who and why)."""

    __tablename__ = "assessment_revisions"
    __table_args__ = (UniqueConstraint("period_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("assessment_periods.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Published before the period ended or with marks missing, on purpose: shown as provisional everywhere
    # until a final revision replaces it.
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    period: Mapped[AssessmentPeriod] = relationship(back_populates="revisions")
    published_by = relationship("User")
    scores: Mapped[list[AssessmentScore]] = relationship(back_populates="revision", order_by="AssessmentScore.id")


class AssessmentScore(db.Model):
    """One unit's (or one person's) published result in one revision: never changed afterwards.

    A sheet that assesses people (`assessed: {tiers}`) stores each person's row with no unit: the account
    (`user_id`), or the post when its holder has no account (`post_id`), with the name and the unit they
    answered to as they were at publication."""

    __tablename__ = "assessment_scores"
    __table_args__ = (UniqueConstraint("revision_id", "unit_id"), UniqueConstraint("revision_id", "user_id"),
                      UniqueConstraint("revision_id", "post_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("assessment_revisions.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    person_name: Mapped[str | None] = mapped_column(String(200))
    answers_to_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # a person's unit at publication
    total: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    grade: Mapped[str | None] = mapped_column(String(64))
    passing: Mapped[bool | None] = mapped_column()
    ranks: Mapped[dict] = mapped_column(JsonType)
    flags: Mapped[list] = mapped_column(JsonType)
    items: Mapped[dict] = mapped_column(JsonType)      # item id → {score, deducted, bonus, rules: {id: amount}}
    metrics: Mapped[dict] = mapped_column(JsonType)
    vetoes: Mapped[list] = mapped_column(JsonType, default=list)   # veto ids that failed the period
    actions: Mapped[list] = mapped_column(JsonType, default=list)  # streaks completed: [{id, name, action}]
    funding: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # The money ledger of the period: [{kind: funding|flag|charge, id, amount, count?}], amounts as published.
    money: Mapped[list] = mapped_column(JsonType, default=list)
    # A sheet scored per area: the areas behind the total, [{area, kind, depth, parent, total, items, metrics?}].
    areas: Mapped[list | None] = mapped_column(JsonType)

    @property
    def ledger(self) -> list[dict]:
        """The money lines; a score published before ledgers existed has its funding alone."""
        if self.money:
            return list(self.money)
        return [{"kind": "funding", "id": "funding", "amount": str(self.funding)}] if self.funding is not None else []

    @property
    def money_total(self) -> Decimal | None:
        lines = self.ledger
        return sum((Decimal(line["amount"]) for line in lines), Decimal(0)) if lines else None

    revision: Mapped[AssessmentRevision] = relationship(back_populates="scores")
    unit = relationship("Unit", foreign_keys=[unit_id])
    answers_to = relationship("Unit", foreign_keys=[answers_to_id])
    post = relationship("Post")

    @property
    def subject_id(self) -> int | str:
        """Whose result this is, as scoring keys it: the unit's id, or "user:<id>" / "post:<id>" for a person."""
        if self.unit_id is not None:
            return self.unit_id
        if self.user_id is not None:
            return f"user:{self.user_id}"
        # A post given an account since is that account's person: their history stays one.
        return f"user:{self.post.user_id}" if self.post is not None and self.post.user_id else f"post:{self.post_id}"

    @property
    def subject(self) -> Any:
        """The unit, or the person as published (name, key and the unit they answered to)."""
        if self.unit_id is not None:
            return self.unit
        return PublishedPerson(self.subject_id, self.person_name or "", self.answers_to)

    @property
    def owner_unit(self) -> Any:
        """The unit whose readers see this result: the unit itself, or the unit a person answered to."""
        return self.unit if self.unit_id is not None else self.answers_to


@dataclass(frozen=True)
class PublishedPerson:
    """A person as a published score names them."""

    id: str
    name: str
    unit: Any

    @property
    def key(self) -> str:
        return self.id


class AssessmentAppeal(db.Model):
    """A unit's appeal against a deduction, decided by the office before publication."""

    __tablename__ = "assessment_appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("assessment_periods.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    item_key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(16))  # upheld | rejected
    note: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    unit = relationship("Unit")



class AssessmentDraft(db.Model):
    """A period's draft as a job last worked it out, for a district too large to score on every view
    (`assessment.drafts`): when, from which marks, and its rows. Replaced whole by the next job."""

    __tablename__ = "assessment_drafts"

    period_id: Mapped[int] = mapped_column(ForeignKey("assessment_periods.id"), primary_key=True)
    worked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    basis: Mapped[str] = mapped_column(String(200))  # the marks it was worked out from (`drafts.basis_of`)
    units: Mapped[int] = mapped_column(Integer, default=0)  # the rows it has (units or people)


class AssessmentDraftRow(db.Model):
    """One unit's (or one person's) result in a kept draft: read a page at a time, found by name, kept to the
    units a reader sees (`owner_id`)."""

    __tablename__ = "assessment_draft_rows"
    __table_args__ = (Index("ix_assessment_draft_rows_period_position", "period_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("assessment_periods.id"))
    position: Mapped[int] = mapped_column(Integer)            # the draft's order (the units' tree)
    unit_id: Mapped[int | None] = mapped_column(Integer, index=True)   # the unit assessed; None for a person
    owner_id: Mapped[int | None] = mapped_column(Integer)     # the unit whose readers see the row
    names: Mapped[str] = mapped_column(Text, default="")      # its names in every language, case folded: found by q
    data: Mapped[dict] = mapped_column(JsonType)              # the row as `drafts.DraftRow.as_json` writes it
