"""Session transactions and savepoints (no Flask: the upload store and the audit log both follow them)."""

from __future__ import annotations

from sqlalchemy.orm import SessionTransaction


def within_transaction(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    """Whether a session transaction is `outer` or nested inside it (a savepoint's work goes with it)."""
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
