"""The workflow engine: a workflow definition as frozen specs; who may fire what, and what firing it does.

Pure: no Flask, no database. Behaviour keys on state *kinds* (open, waiting, final), never on names.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.cache import memoize
from ..definitions.deadlines import DeadlineError, checked_amount
from ..definitions.loader import content_key
from ..expressions import Expression, ExpressionError, compile_expression

Text = str | dict | None


@dataclass(frozen=True)
class StateSpec:
    id: str
    name: Text
    kind: str  # open | waiting | final
    outcome: str | None = None
    public_name: Text = None
    counted: bool = True  # a case in this state counts in the ledger and case metrics



@dataclass(frozen=True)
class Effect:
    """One action of a transition: `kind` is set, assign, start_deadline, stop_deadline or notify."""

    kind: str
    value: Any
    expressions: Mapping[str, Expression] = field(default_factory=dict)  # for `set`


@dataclass(frozen=True)
class Who:
    roles: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    relations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NotBy:
    """Four eyes: the people a step refuses even when `who` lets them (its reporter, whoever took `steps`)."""

    relations: frozenset[str] = frozenset()
    steps: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TransitionSpec:
    id: str
    name: Text
    sources: tuple[str, ...]
    target: str
    who: Who
    form: str | None = None
    guard: Expression | None = None
    effects: tuple[Effect, ...] = ()
    counts_as: frozenset[str] = frozenset()
    not_by: NotBy = NotBy()


@dataclass(frozen=True)
class DeadlineSpec:
    id: str
    name: Text
    working_days: Expression | None = None
    working_hours: Expression | None = None
    max_calendar_days: int | None = None


@dataclass(frozen=True)
class EscalationSpec:
    id: str
    deadline: str
    when: str  # due_soon | overdue
    actions: tuple[str, ...]
    notify: tuple[str, ...] = ()
    working_hours_before: float = 0


@dataclass(frozen=True)
class WorkflowSpec:
    id: str
    name: Text
    initial: str
    states: Mapping[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    deadlines: Mapping[str, DeadlineSpec]
    escalations: tuple[EscalationSpec, ...]
    on_create: tuple[Effect, ...] = ()
    report_form: str | None = None
    fields: tuple[str, ...] = ()
    queue_line: str | None = None                            # the field a queue row shows as its line
    queue_flags: tuple[tuple[str, frozenset[str]], ...] = ()  # (choice field, values that tag a queue row)

    def transition(self, transition_id: str) -> TransitionSpec | None:
        return next((t for t in self.transitions if t.id == transition_id), None)

    def kind_of(self, state: str) -> str:
        return self.states[state].kind

    def ending(self, transition: TransitionSpec) -> str | None:
        """Whether a step ends the case unresolved ("ends": refused, a duplicate, withdrawn) or hands it back
        ("returns"): such steps ask for confirmation, and are never the one a case page offers first."""
        target = self.states[transition.target]
        if target.kind == "final" and target.outcome != "resolved":
            return "ends"
        return "returns" if "return" in transition.counts_as else None


def _effects(items: Iterable[dict]) -> tuple[Effect, ...]:
    out = []
    for item in items or []:
        ((kind, value),) = item.items()
        if kind == "set":
            expressions = {k: compile_expression(v) for k, v in value.items()}
        elif kind == "extend_deadline":
            expressions = {k: _compile(value[k]) for k in ("working_days", "working_hours") if k in value}
        else:
            expressions = {}
        if kind == "notify":
            value = recipients(value)
        out.append(Effect(kind, value, expressions))
    return tuple(out)


def recipients(items: Iterable[Any]) -> tuple[str, ...]:
    """A `notify` list as names: a relation (`assignee`), a fixed unit (`{unit: k}` → "unit:k") or the holder of
    a tier over the case's place (`{tier: t}` → "tier:t")."""
    out = []
    for item in items or ():
        if isinstance(item, Mapping):
            ((kind, key),) = item.items()
            out.append(f"{kind}:{key}")
        else:
            out.append(str(item))
    return tuple(out)


def _compile(source: str | float | None) -> Expression | None:
    """A formula; a plain number (`working_days: 3`) is the formula giving that number."""
    if isinstance(source, int | float) and not isinstance(source, bool):
        return compile_expression(repr(source))
    return compile_expression(source) if source else None


# Final outcomes that mean "there was no problem to handle": not counted unless a state says otherwise.
UNCOUNTED_OUTCOMES = frozenset({"rejected", "duplicate", "withdrawn"})


def state_counted(state: Mapping[str, Any]) -> bool:
    """Whether a case in this state counts as found (and closed): the state's `counted`, else by its outcome."""
    if "counted" in state:
        return bool(state["counted"])
    return not (state.get("kind") == "final" and state.get("outcome") in UNCOUNTED_OUTCOMES)


def workflow_spec_of(row: Any) -> WorkflowSpec:
    """The compiled spec of a stored workflow (a definition row or ref): its stored hash saves hashing it again."""
    return workflow_spec(row.data, row.content_hash)


@memoize(256, key=content_key)
def workflow_spec(definition: dict, digest: str | None = None) -> WorkflowSpec:
    """The compiled spec of a workflow definition (once per content hash; `digest`: that hash, if known)."""
    transitions = []
    for t in definition["transitions"]:
        who = t.get("who", {})
        sources = tuple(t["from"] if isinstance(t["from"], list) else [t["from"]])
        transitions.append(TransitionSpec(
            id=t["id"], name=t.get("name"), sources=sources, target=t["to"],
            who=Who(frozenset(who.get("roles", [])), frozenset(who.get("tiers", [])),
                    frozenset(who.get("capabilities", [])), frozenset(who.get("relations", []))),
            form=t.get("form"), guard=_compile(t.get("guard")), effects=_effects(t.get("effects", [])),
            counts_as=frozenset(t.get("counts_as", [])),
            not_by=NotBy(frozenset((t.get("not_by") or {}).get("relations", [])),
                         frozenset((t.get("not_by") or {}).get("steps", [])))))
    queue = definition.get("queue") or {}
    return WorkflowSpec(
        id=definition["id"], name=definition.get("name"), initial=definition["initial"],
        states={s["id"]: StateSpec(s["id"], s.get("name"), s["kind"], s.get("outcome"), s.get("public_name"),
                                   state_counted(s))
                for s in definition["states"]},
        transitions=tuple(transitions),
        deadlines={d["id"]: DeadlineSpec(d["id"], d.get("name"), _compile(d.get("working_days")),
                                         _compile(d.get("working_hours")), d.get("max_calendar_days"))
                   for d in definition.get("deadlines", [])},
        escalations=tuple(EscalationSpec(e["id"], e["deadline"], e["when"], tuple(e["actions"]),
                                         recipients(e.get("notify", [])), float(e.get("working_hours_before", 0)))
                          for e in definition.get("escalations", [])),
        on_create=_effects(definition.get("on_create", [])),
        report_form=definition.get("report_form"),
        fields=tuple(f["id"] for f in definition.get("fields", [])),
        queue_line=queue.get("line"),
        queue_flags=tuple((f["field"], frozenset(f["values"])) for f in queue.get("flags", [])),
    )


@dataclass(frozen=True)
class Actor:
    """What a person holds *over this case*: capabilities, roles and tiers reaching its unit, and relations."""

    capabilities: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    relations: frozenset[str] = frozenset()
    took: frozenset[str] = frozenset()  # the steps this person has taken on this case


def may_fire(transition: TransitionSpec, actor: Actor) -> bool:
    who, not_by = transition.who, transition.not_by
    if not_by.relations & actor.relations or not_by.steps & actor.took:
        return False
    return bool(who.capabilities & actor.capabilities or who.roles & actor.roles or who.tiers & actor.tiers
                or who.relations & actor.relations)


def guard_holds(transition: TransitionSpec, names: Mapping[str, Any]) -> bool:
    if transition.guard is None:
        return True
    try:
        return bool(transition.guard.evaluate(names))
    except ExpressionError:
        return False  # a guard that cannot be evaluated on this case's data does not hold


def available(spec: WorkflowSpec, state: str, actor: Actor, names: Mapping[str, Any]) -> list[TransitionSpec]:
    """Transitions this actor may fire now. A transition with a form has its guard checked on firing, with the
    form's answers (a verdict decides between "close" and "rework")."""
    return [t for t in spec.transitions if state in t.sources and may_fire(t, actor)
            and (t.form is not None or guard_holds(t, names))]


@dataclass
class Plan:
    """What firing a transition does: the new state, field values, assignments, deadlines, notifications."""

    target: str
    target_kind: str
    changes: dict[str, Any] = field(default_factory=dict)
    assign: list[tuple[str, Any]] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    extend: list[tuple[str, str, float]] = field(default_factory=list)  # (deadline, "days" | "hours", amount)
    notify: set[str] = field(default_factory=set)


def plan_effects(spec: WorkflowSpec, effects: Iterable[Effect], target: str, names: Mapping[str, Any]) -> Plan:
    """Work out the effects in order; later `set`s see earlier ones."""
    plan = Plan(target=target, target_kind=spec.kind_of(target))
    scope = ChainMap({}, names)  # `set`s write in front; names are read only if an effect reads them
    for effect in effects:
        if effect.kind == "set":
            for key, expression in effect.expressions.items():
                try:
                    value = expression.evaluate(scope)
                except ExpressionError:
                    value = None
                plan.changes[key] = value
                scope[key] = value
        elif effect.kind == "assign":
            ((how, value),) = effect.value.items()
            plan.assign.append((how, scope.get(value) if how == "field" else value))
        elif effect.kind == "start_deadline":
            plan.start.append(effect.value)
        elif effect.kind == "stop_deadline":
            plan.stop.append(effect.value)
        elif effect.kind == "extend_deadline":
            for unit_name, key in (("days", "working_days"), ("hours", "working_hours")):
                if key in effect.expressions:
                    try:
                        amount = effect.expressions[key].evaluate(scope)
                    except ExpressionError:
                        amount = None
                    try:  # an extension within the same bounds as a deadline (no absurd date to compute)
                        amount = checked_amount(unit_name, amount)
                    except DeadlineError:
                        amount = 0.0  # what gives no usable amount extends nothing, as it always has
                    if amount > 0:
                        plan.extend.append((effect.value["deadline"], unit_name, amount))
        elif effect.kind == "notify":
            plan.notify |= set(effect.value)
    if plan.target_kind == "final":
        plan.stop = list(dict.fromkeys([*plan.stop, *spec.deadlines]))  # a closed case has no clock running
        plan.start, plan.extend = [], []
    return plan


def plan_transition(spec: WorkflowSpec, transition: TransitionSpec, names: Mapping[str, Any]) -> Plan:
    return plan_effects(spec, transition.effects, transition.target, names)


def deadline_amount(deadline: DeadlineSpec, names: Mapping[str, Any]) -> tuple[str, float] | None:
    """('days' | 'hours', amount) from the deadline's formula over case fields; None for a deadline with no
    formula. A formula that fails or gives no usable amount raises DeadlineError, never a silent None."""
    for unit, expression in (("days", deadline.working_days), ("hours", deadline.working_hours)):
        if expression is not None:
            try:
                value = expression.evaluate(names)
            except ExpressionError as exc:
                raise DeadlineError(f"the formula cannot be computed: {exc.message}") from None
            return unit, checked_amount(unit, value)
    return None
