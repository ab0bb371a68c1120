"""Rebuild the task state table (`task_manager`) from the event store alone."""

from __future__ import annotations

from services.task_service.domain.model import fold
from services.task_service.service_layer.unit_of_work import UnitOfWork


def rebuild_state(uow: UnitOfWork) -> int:
    """Replace `task_manager` with the fold of the events; return the number of tasks."""
    with uow:
        uow.tasks.lock_table()
        uow.events.lock(bulk=True)  # the lock order of every writer: the table, then seqs
        state = fold(uow.events.task_events())
        uow.tasks.replace_all(list(state.values()))
        uow.commit()
    return len(state)
