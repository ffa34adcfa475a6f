"""What the web view's playbook pages read besides the playbooks themselves (storage.playbooks): the runs
of a playbook a person may see (storage.runs.visible_to, the one SQL form of can_view), and what
"Improve the playbook" draws on: the items added by hand during a run and how each item of the
playbook's recent finished runs ended. Each helper takes a Session (Database.run).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.domain.permissions import Viewer
from storage.models import Checklist, ChecklistItem, Run, TimelineEvent
from storage.runs import SEEN_STATUSES, visible_to

RUNS_SHOWN = 200  # runs of one playbook on its page
RECENT_RUNS = 10  # finished runs "Improve the playbook" looks at


@dataclass(frozen=True)
class RunBrief:
    id: str
    name: str
    status: str
    created_at: int
    finished_at: int | None
    playbook_id: str
    playbook_version_id: str | None


def _brief(run: Run) -> RunBrief:
    return RunBrief(run.id, run.name, run.status, run.created_at, run.finished_at, run.playbook_id,
                    run.playbook_version_id)


def runs_of(session: Session, viewer: Viewer, playbook_ids: list[str], limit: int = RUNS_SHOWN
            ) -> dict[str, list[RunBrief]]:
    """playbook id -> the runs of it the viewer may see, newest first (at most `limit` in all)."""
    if not playbook_ids:
        return {}
    rows = session.exec(select(Run).where(col(Run.playbook_id).in_(sorted(set(playbook_ids))),
                                          col(Run.status).in_(SEEN_STATUSES), visible_to(viewer))
                        .order_by(col(Run.created_at).desc(), col(Run.id)).limit(limit)).all()
    out: dict[str, list[RunBrief]] = {}
    for run in rows:
        out.setdefault(run.playbook_id, []).append(_brief(run))
    return out


def get_run(session: Session, viewer: Viewer, run_id: str) -> RunBrief | None:
    """The run when the viewer may see it."""
    run = session.exec(select(Run).where(Run.id == run_id, col(Run.status).in_(SEEN_STATUSES),
                                         visible_to(viewer))).first()
    return _brief(run) if run is not None else None


@dataclass(frozen=True)
class Outcome:
    run_id: str
    checklist: str
    title: str
    state: str
    due_s: int | None  # seconds after the run's start
    done_s: int | None  # when a closed item was last changed, seconds after the run's start


def added_by_hand(session: Session, run_id: str) -> list[tuple[str, str]]:
    """(checklist title, item title) of the items added to the run while it was going, still there."""
    events = session.exec(select(TimelineEvent).where(TimelineEvent.run_id == run_id,
                                                      TimelineEvent.type == "item_added")
                          .order_by(col(TimelineEvent.at), col(TimelineEvent.id))).all()
    item_ids = [str(e.details.get("item_id")) for e in events if isinstance(e.details, dict)]
    if not item_ids:
        return []
    rows = session.exec(select(ChecklistItem, Checklist).join(Checklist, col(Checklist.id) ==
                                                              col(ChecklistItem.checklist_id))
                        .where(col(ChecklistItem.id).in_(item_ids))).all()
    found = {item.id: (checklist.title, item.title) for item, checklist in rows}
    return [found[i] for i in item_ids if i in found]


def recent_outcomes(session: Session, playbook_id: str, run_id: str, recent: int = RECENT_RUNS) -> list[Outcome]:
    """How each (visible, not hidden) item ended in the playbook's last `recent` finished runs and in
    `run_id`."""
    runs = list(session.exec(select(Run).where(Run.playbook_id == playbook_id, Run.status == "finished")
                             .order_by(col(Run.created_at).desc()).limit(recent)).all())
    if all(r.id != run_id for r in runs):
        this = session.get(Run, run_id)
        if this is not None and this.playbook_id == playbook_id:
            runs.append(this)
    started = {r.id: r.created_at for r in runs}
    if not started:
        return []
    rows = session.exec(select(ChecklistItem, Checklist).join(Checklist, col(Checklist.id) ==
                                                              col(ChecklistItem.checklist_id))
                        .where(col(ChecklistItem.run_id).in_(sorted(started)),
                               col(ChecklistItem.hidden).is_(False))).all()
    out = []
    for item, checklist in rows:
        start = started[item.run_id]
        due_s = (item.due_at - start) // 1000 if item.due_at is not None else None
        done_s = (item.updated_at - start) // 1000 if item.state == "closed" and item.updated_at else None
        out.append(Outcome(item.run_id, checklist.title, item.title, item.state, due_s, done_s))
    return out


def improve_facts(session: Session, playbook_id: str, run_id: str
                  ) -> tuple[list[tuple[str, str]], list[Outcome], str]:
    """What "Improve the playbook" draws on: the items added by hand during the run, how the items of the
    playbook's recent runs ended, and the run's retrospective text."""
    return (added_by_hand(session, run_id), recent_outcomes(session, playbook_id, run_id),
            retrospective_text(session, run_id))


def retrospective_text(session: Session, run_id: str) -> str:
    run = session.get(Run, run_id)
    return run.retrospective_text if run is not None else ""
