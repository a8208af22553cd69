"""The pure workflow engine: a definition compiled to specs, who may fire what, and what firing it plans."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from server.definitions.deadlines import DeadlineError
from server.definitions.schema import validator_for
from server.expressions import ExpressionError
from server.workflow import engine
from server.workflow.engine import (
    UNCOUNTED_OUTCOMES,
    Actor,
    DeadlineSpec,
    EscalationSpec,
    NotBy,
    Plan,
    StateSpec,
    Who,
    available,
    deadline_amount,
    guard_holds,
    may_fire,
    plan_effects,
    plan_transition,
    state_counted,
    workflow_spec,
)
from tests.support.clock import NOW

ROOT = Path(__file__).resolve().parents[2]

# A small workflow using every part of the format: states of each kind, a transition from several states, who /
# not_by / guard / form / effects / counts_as, two deadlines (a formula and a plain number) and escalations.
FLOW = {
    "kind": "workflow", "id": "mini", "name": {"zh": "小流程", "en": "Mini"},
    "report_form": "problem_report",
    "fields": [{"id": "handler", "type": "unit"}, {"id": "rework_count", "type": "integer"},
               {"id": "closed_on", "type": "datetime"}],
    "initial": "new",
    "on_create": [{"assign": {"routing": True}}, {"start_deadline": "handle"}],
    "states": [
        {"id": "new", "name": {"zh": "新", "en": "New"}, "kind": "open", "public_name": {"zh": "已受理"}},
        {"id": "working", "name": "处理中", "kind": "open"},
        {"id": "paused", "name": "挂起", "kind": "waiting"},
        {"id": "checking", "name": "待核查", "kind": "open"},
        {"id": "done", "name": "办结", "kind": "final", "outcome": "resolved"},
        {"id": "refused", "name": "不受理", "kind": "final", "outcome": "rejected"},
        {"id": "duplicate", "name": "重复", "kind": "final", "outcome": "duplicate", "counted": True},
    ],
    "transitions": [
        {"id": "dispatch", "name": "交办", "from": "new", "to": "working",
         "who": {"capabilities": ["case.dispatch"]}, "form": "dispatch",
         "effects": [{"set": {"handler": "target_unit"}}, {"assign": {"field": "handler"}},
                     {"notify": ["assignee", "assignee_unit"]}]},
        {"id": "refuse", "name": "不受理", "from": "new", "to": "refused",
         "who": {"roles": ["dispatcher"]}, "guard": "coalesce(size_m3, 0) < 1",
         "effects": [{"notify": ["reporter"]}]},
        {"id": "pause", "name": "挂起", "from": ["new", "working"], "to": "paused",
         "who": {"tiers": ["street"]}, "counts_as": ["suspension"]},
        {"id": "finish", "name": "完成", "from": "working", "to": "checking",
         "who": {"relations": ["assignee", "assignee_unit"]}, "effects": [{"stop_deadline": "handle"}]},
        {"id": "close", "name": "核查通过", "from": "checking", "to": "done",
         "who": {"capabilities": ["case.dispatch"], "relations": ["reporter"]}, "form": "verification",
         "guard": "verdict == 'passed'", "not_by": {"relations": ["assignee"], "steps": ["finish"]},
         "effects": [{"set": {"closed_on": "now"}}, {"stop_deadline": "reply"}, {"notify": ["assignee"]}]},
        {"id": "rework", "name": "返工", "from": "checking", "to": "working",
         "who": {"capabilities": ["case.dispatch"], "relations": ["reporter"]}, "form": "verification",
         "guard": "verdict == 'failed'", "not_by": {"steps": ["finish"]}, "counts_as": ["rework"],
         "effects": [{"set": {"rework_count": "coalesce(rework_count, 0) + 1"}}, {"start_deadline": "handle"},
                     {"notify": ["assignee"]}]},
        {"id": "extend", "name": "延期", "from": "working", "to": "working",
         "who": {"capabilities": ["case.dispatch"]},
         "effects": [{"extend_deadline": {"deadline": "handle", "working_days": "extension_days"}},
                     {"extend_deadline": {"deadline": "reply", "working_hours": 4}}]},
    ],
    "deadlines": [
        {"id": "handle", "name": "处置时限", "working_days": "1 if coalesce(size_m3, 0) < 3 else 3",
         "max_calendar_days": 7},
        {"id": "reply", "name": "答复时限", "working_hours": 4},
    ],
    "escalations": [
        {"id": "handle_soon", "deadline": "handle", "when": "due_soon", "working_hours_before": 2,
         "actions": ["notify"], "notify": ["assignee"]},
        {"id": "handle_late", "deadline": "handle", "when": "overdue", "actions": ["mark_overdue", "count_missed"]},
    ],
}


def flow(**changes) -> dict:  # noqa: ANN003
    """A deep copy of FLOW with top-level keys replaced (so the memoized spec of FLOW itself is never touched)."""
    return {**copy.deepcopy(FLOW), **changes}


def spec_with_effects(*effects: dict, target: str = "working") -> engine.WorkflowSpec:
    """FLOW with one extra transition `t` (new → target) carrying these effects."""
    extra = {"id": "t", "name": "t", "from": "new", "to": target, "who": {"roles": ["x"]}, "effects": list(effects)}
    return workflow_spec(flow(transitions=[*FLOW["transitions"], extra]))


def actor(**sets: list[str]) -> Actor:
    return Actor(**{key: frozenset(values) for key, values in sets.items()})


@pytest.fixture(scope="module")
def spec() -> engine.WorkflowSpec:
    return workflow_spec(FLOW)


def test_the_hand_written_flow_is_a_valid_definition():
    """The dict these tests compile is one the loader would accept (so the engine is tested on real input)."""
    assert [error.message for error in validator_for("workflow").iter_errors(FLOW)] == []


# -- workflow_spec ---------------------------------------------------------------------------------------------

def test_spec_carries_the_workflows_identity_and_fields(spec):
    assert (spec.id, spec.name, spec.initial) == ("mini", {"zh": "小流程", "en": "Mini"}, "new")
    assert spec.report_form == "problem_report"
    assert spec.fields == ("handler", "rework_count", "closed_on")


def test_states_keep_their_order_kind_outcome_and_public_name(spec):
    assert list(spec.states) == ["new", "working", "paused", "checking", "done", "refused", "duplicate"]
    assert spec.states["new"] == StateSpec("new", {"zh": "新", "en": "New"}, "open", None, {"zh": "已受理"}, True)
    assert spec.states["done"] == StateSpec("done", "办结", "final", "resolved", None, True)
    assert spec.states["refused"].counted is False  # rejected: by default not counted
    assert spec.states["duplicate"].counted is True  # the state's own `counted` wins


@pytest.mark.parametrize(("state", "kind"), [
    ("new", "open"), ("paused", "waiting"), ("done", "final"), ("refused", "final"),
])
def test_kind_of(spec, state, kind):
    assert spec.kind_of(state) == kind


def test_kind_of_an_unknown_state_raises(spec):
    with pytest.raises(KeyError):
        spec.kind_of("nowhere")


def test_transition_finds_by_id_or_gives_none(spec):
    assert spec.transition("close").target == "done"
    assert spec.transition("nowhere") is None
    assert [t.id for t in spec.transitions] == ["dispatch", "refuse", "pause", "finish", "close", "rework", "extend"]


def test_transition_spec_fields(spec):
    close = spec.transition("close")
    assert close.name == "核查通过"
    assert close.sources == ("checking",)
    assert close.who == Who(capabilities=frozenset({"case.dispatch"}), relations=frozenset({"reporter"}))
    assert close.not_by == NotBy(frozenset({"assignee"}), frozenset({"finish"}))
    assert close.form == "verification"
    assert close.guard.source == "verdict == 'passed'"
    assert close.counts_as == frozenset()


def test_from_may_be_one_state_or_a_list(spec):
    assert spec.transition("pause").sources == ("new", "working")
    assert spec.transition("finish").sources == ("working",)


def test_who_keeps_roles_tiers_capabilities_and_relations_apart(spec):
    assert spec.transition("refuse").who == Who(roles=frozenset({"dispatcher"}))
    assert spec.transition("pause").who == Who(tiers=frozenset({"street"}))
    assert spec.transition("finish").who == Who(relations=frozenset({"assignee", "assignee_unit"}))


def test_optional_parts_of_a_transition_default_to_empty(spec):
    pause = spec.transition("pause")
    assert (pause.form, pause.guard, pause.effects) == (None, None, ())
    assert pause.not_by == NotBy()
    assert pause.counts_as == frozenset({"suspension"})
    assert spec.transition("rework").not_by == NotBy(steps=frozenset({"finish"}))


def test_a_transition_without_who_or_name_compiles_to_nobody():
    definition = flow(transitions=[{"id": "t", "from": "new", "to": "done"}])
    t = workflow_spec(definition).transition("t")
    assert t.name is None and t.who == Who()
    assert not may_fire(t, actor(capabilities=["case.dispatch"], roles=["x"], tiers=["y"], relations=["reporter"]))


def test_effects_compile_in_order_with_their_expressions(spec):
    effects = spec.transition("rework").effects
    assert [e.kind for e in effects] == ["set", "start_deadline", "notify"]
    assert effects[0].value == {"rework_count": "coalesce(rework_count, 0) + 1"}
    assert {k: e.source for k, e in effects[0].expressions.items()} == {"rework_count": "coalesce(rework_count, 0) + 1"}
    assert (effects[1].value, effects[1].expressions) == ("handle", {})
    assert effects[2].value == ("assignee",)  # notify names, fixed units and tiers as "unit:k", "tier:t"


def test_extend_deadline_compiles_a_formula_or_a_plain_number(spec):
    days, hours = spec.transition("extend").effects
    assert days.kind == hours.kind == "extend_deadline"
    assert {k: e.source for k, e in days.expressions.items()} == {"working_days": "extension_days"}
    assert {k: e.source for k, e in hours.expressions.items()} == {"working_hours": "4"}
    assert hours.value == {"deadline": "reply", "working_hours": 4}


def test_on_create_effects(spec):
    assert [(e.kind, e.value) for e in spec.on_create] == [("assign", {"routing": True}), ("start_deadline", "handle")]


def test_deadlines(spec):
    handle, reply = spec.deadlines["handle"], spec.deadlines["reply"]
    assert list(spec.deadlines) == ["handle", "reply"]
    assert (handle.name, handle.working_days.source, handle.working_hours, handle.max_calendar_days) == (
        "处置时限", "1 if coalesce(size_m3, 0) < 3 else 3", None, 7)
    assert (reply.working_days, reply.working_hours.source, reply.max_calendar_days) == (None, "4", None)


@pytest.mark.parametrize(("amount", "source", "days"), [
    (3, "3", 3.0), (0.5, "0.5", 0.5), (0, "0", 0.0), ("2 * 2", "2 * 2", 4.0),
])
def test_a_plain_number_of_days_is_the_formula_giving_it(amount, source, days):
    definition = flow(deadlines=[{"id": "handle", "name": "d", "working_days": amount}])
    deadline = workflow_spec(definition).deadlines["handle"]
    assert deadline.working_days.source == source
    assert deadline_amount(deadline, {}) == ("days", days)


def test_a_boolean_is_not_a_number_of_days():
    with pytest.raises(ExpressionError, match="must be text"):
        workflow_spec(flow(deadlines=[{"id": "handle", "name": "d", "working_days": True}]))


def test_escalations(spec):
    assert spec.escalations == (
        EscalationSpec("handle_soon", "handle", "due_soon", ("notify",), ("assignee",), 2.0),
        EscalationSpec("handle_late", "handle", "overdue", ("mark_overdue", "count_missed"), (), 0.0),
    )
    assert isinstance(spec.escalations[0].working_hours_before, float)


def test_a_minimal_definition_has_empty_optional_parts():
    definition = {"id": "m", "initial": "a", "states": [{"id": "a", "kind": "open"}, {"id": "z", "kind": "final"}],
                  "transitions": [{"id": "go", "from": "a", "to": "z", "who": {"roles": ["r"]}}]}
    spec = workflow_spec(definition)
    assert (spec.name, spec.report_form, spec.fields, spec.on_create) == (None, None, (), ())
    assert (dict(spec.deadlines), spec.escalations) == ({}, ())
    assert spec.states["z"] == StateSpec("z", None, "final", None, None, True)


def test_a_bad_guard_is_refused_when_compiling():
    transitions = [*FLOW["transitions"][:-1], {**FLOW["transitions"][-1], "guard": "verdict =="}]
    with pytest.raises(ExpressionError, match="syntax error"):
        workflow_spec(flow(transitions=transitions))


def test_a_bad_set_expression_is_refused_when_compiling():
    with pytest.raises(ExpressionError):
        spec_with_effects({"set": {"x": "__import__('os')"}})


def test_specs_are_memoized_by_content_not_identity(spec):
    same = copy.deepcopy(FLOW)
    reordered = dict(reversed(list(same.items())))
    assert workflow_spec(same) is spec
    assert workflow_spec(reordered) is spec  # key order is not content
    other = workflow_spec(flow(initial="working"))
    assert other is not spec and other.initial == "working" and spec.initial == "new"


def test_specs_are_frozen(spec):
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.initial = "done"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.transition("close").target = "new"  # type: ignore[misc]


# -- state_counted -------------------------------------------------------------------------------------------

def test_uncounted_outcomes():
    assert frozenset({"rejected", "duplicate", "withdrawn"}) == UNCOUNTED_OUTCOMES


@pytest.mark.parametrize(("state", "counted"), [
    ({"kind": "open"}, True),
    ({"kind": "waiting"}, True),
    ({"kind": "final"}, True),
    ({"kind": "final", "outcome": "resolved"}, True),
    ({"kind": "final", "outcome": "rejected"}, False),
    ({"kind": "final", "outcome": "duplicate"}, False),
    ({"kind": "final", "outcome": "withdrawn"}, False),
    ({"kind": "open", "outcome": "rejected"}, True),  # only a *final* state's outcome uncounts it
    ({"kind": "final", "outcome": "resolved", "counted": False}, False),
    ({"kind": "final", "outcome": "rejected", "counted": True}, True),
    ({"kind": "open", "counted": False}, False),
])
def test_state_counted(state, counted):
    assert state_counted(state) is counted


# -- may_fire, guard_holds, available ---------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "holds", "allowed"), [
    ({"capabilities": ["case.dispatch"]}, {"capabilities": ["case.dispatch"]}, True),
    ({"capabilities": ["case.dispatch"]}, {"capabilities": ["case.view"]}, False),
    ({"roles": ["inspector"]}, {"roles": ["inspector", "clerk"]}, True),
    ({"roles": ["inspector"]}, {"roles": ["clerk"]}, False),
    ({"tiers": ["street"]}, {"tiers": ["street"]}, True),
    ({"tiers": ["street"]}, {"tiers": ["district"]}, False),
    ({"relations": ["reporter"]}, {"relations": ["reporter"]}, True),
    ({"relations": ["reporter"]}, {"relations": ["assignee"]}, False),
    # any one of the lists is enough
    ({"roles": ["inspector"], "relations": ["reporter"]}, {"relations": ["reporter"]}, True),
    # the four lists are separate: a name held as something else does not count
    ({"roles": ["inspector"]}, {"capabilities": ["inspector"], "tiers": ["inspector"],
                                "relations": ["inspector"]}, False),
    ({"capabilities": ["case.dispatch"]}, {"roles": ["case.dispatch"]}, False),
    ({"roles": ["inspector"]}, {}, False),
])
def test_may_fire_by_who(who, holds, allowed):
    transition = workflow_spec(flow(transitions=[{"id": "t", "from": "new", "to": "done", "who": who}])).transition("t")
    assert may_fire(transition, actor(**holds)) is allowed


@pytest.mark.parametrize(("holds", "allowed"), [
    ({"capabilities": ["case.dispatch"]}, True),
    ({"relations": ["reporter"]}, True),
    ({"capabilities": ["case.dispatch"], "relations": ["assignee"]}, False),  # not_by.relations
    ({"relations": ["reporter", "assignee"]}, False),
    ({"capabilities": ["case.dispatch"], "took": ["finish"]}, False),  # not_by.steps: who did the work
    ({"relations": ["reporter"], "took": ["dispatch", "finish"]}, False),
    ({"capabilities": ["case.dispatch"], "took": ["dispatch", "rework"]}, True),  # other steps do not bar
    ({"relations": ["assignee_unit"]}, False),  # neither let in by `who` ...
    ({"took": ["dispatch"]}, False),  # ... nor by having taken a step
])
def test_not_by_refuses_even_whom_who_lets_in(spec, holds, allowed):
    assert may_fire(spec.transition("close"), actor(**holds)) is allowed


@pytest.mark.parametrize(("names", "holds"), [
    ({"verdict": "passed"}, True),
    ({"verdict": "failed"}, False),
    ({}, False),  # a missing name is None
])
def test_guard_holds(spec, names, holds):
    assert guard_holds(spec.transition("close"), names) is holds


def test_a_transition_without_a_guard_always_holds(spec):
    assert guard_holds(spec.transition("finish"), {}) is True


def test_a_guard_that_cannot_be_evaluated_does_not_hold():
    definition = flow(transitions=[{"id": "t", "from": "new", "to": "done", "who": {"roles": ["r"]},
                                    "guard": "size_m3 > 3"}])
    t = workflow_spec(definition).transition("t")
    assert guard_holds(t, {"size_m3": 5}) is True
    assert guard_holds(t, {"size_m3": None}) is False  # None in a comparison is an ExpressionError
    assert guard_holds(t, {"size_m3": "big"}) is False  # text against a number


DISPATCHER = actor(capabilities=["case.dispatch"], roles=["dispatcher"], tiers=["street"])


@pytest.mark.parametrize(("state", "who", "names", "expected"), [
    ("new", DISPATCHER, {"size_m3": 0.5}, ["dispatch", "refuse", "pause"]),
    ("new", DISPATCHER, {"size_m3": 5}, ["dispatch", "pause"]),  # formless `refuse`: its guard is checked now
    ("new", DISPATCHER, {"size_m3": "big"}, ["dispatch", "pause"]),  # a guard that fails to evaluate: not offered
    ("new", actor(roles=["dispatcher"]), {}, ["refuse"]),
    ("working", actor(relations=["assignee"]), {}, ["finish"]),
    ("working", actor(tiers=["street"], relations=["assignee"]), {}, ["pause", "finish"]),
    ("working", DISPATCHER, {}, ["pause", "extend"]),
    # `close` and `rework` have a form: both are offered and the verdict in the form decides on firing
    ("checking", DISPATCHER, {"verdict": None}, ["close", "rework"]),
    ("checking", actor(relations=["reporter"]), {"verdict": "failed"}, ["close", "rework"]),
    ("checking", actor(capabilities=["case.dispatch"], took=["finish"]), {}, []),
    ("checking", actor(capabilities=["case.dispatch"], relations=["assignee"]), {}, ["rework"]),
    ("done", DISPATCHER, {}, []),  # nothing leaves a final state here
    ("nowhere", DISPATCHER, {}, []),
    ("new", Actor(), {"size_m3": 0}, []),
])
def test_available(spec, state, who, names, expected):
    assert [t.id for t in available(spec, state, who, names)] == expected


# -- plan_effects, plan_transition ---------------------------------------------------------------------------

def test_a_transition_without_effects_plans_only_its_target(spec):
    assert plan_transition(spec, spec.transition("pause"), {}) == Plan(target="paused", target_kind="waiting")


def test_plan_transition_is_plan_effects_of_the_transition(spec):
    names = {"rework_count": 1, "now": NOW}
    rework = spec.transition("rework")
    assert plan_transition(spec, rework, names) == plan_effects(spec, rework.effects, "working", names)


def test_dispatch_sets_then_assigns_the_field_it_set(spec):
    plan = plan_transition(spec, spec.transition("dispatch"), {"target_unit": "shilong", "handler": "old"})
    assert plan.changes == {"handler": "shilong"}
    assert plan.assign == [("field", "shilong")]  # the value just set, not the case's old one
    assert plan.notify == {"assignee", "assignee_unit"}
    assert (plan.target, plan.target_kind, plan.start, plan.stop, plan.extend) == ("working", "open", [], [], [])


def test_later_sets_see_earlier_ones_and_names_are_left_alone():
    spec = spec_with_effects({"set": {"a": "base + 1", "b": "a * 10"}}, {"set": {"a": "b + a", "c": "a"}})
    names = {"base": 1, "a": 100}
    plan = plan_transition(spec, spec.transition("t"), names)
    assert plan.changes == {"a": 22, "b": 20, "c": 22}
    assert names == {"base": 1, "a": 100}


def test_rework_counts_up_from_the_case_value(spec):
    rework = spec.transition("rework")
    assert plan_transition(spec, rework, {}).changes == {"rework_count": 1}
    assert plan_transition(spec, rework, {"rework_count": 2}).changes == {"rework_count": 3}


def test_a_set_that_cannot_be_computed_gives_none_and_later_sets_see_none():
    spec = spec_with_effects({"set": {"x": "size_m3 + 1"}}, {"set": {"y": "coalesce(x, 7)"}})
    plan = plan_transition(spec, spec.transition("t"), {"size_m3": None, "x": 5})
    assert plan.changes == {"x": None, "y": 7}


def test_close_sets_the_time_and_stops_every_deadline(spec):
    plan = plan_transition(spec, spec.transition("close"), {"now": NOW, "verdict": "passed"})
    assert plan.changes == {"closed_on": NOW}
    assert (plan.target, plan.target_kind) == ("done", "final")
    # its own stop first, then every deadline of the workflow in order, none twice: a closed case has no clock
    assert plan.stop == ["reply", "handle"]
    assert plan.notify == {"assignee"}


def test_only_a_final_target_stops_all_deadlines(spec):
    assert plan_transition(spec, spec.transition("finish"), {}).stop == ["handle"]
    assert plan_transition(spec, spec.transition("refuse"), {}).stop == ["handle", "reply"]


@pytest.mark.parametrize(("assign", "names", "expected"), [
    ({"routing": True}, {}, ("routing", True)),
    ({"unit": "street_office"}, {"street_office": "other"}, ("unit", "street_office")),  # an id, not a name
    ({"tier_above": True}, {}, ("tier_above", True)),
    ({"reporter": True}, {}, ("reporter", True)),
    ({"field": "handling_unit"}, {"handling_unit": "shilong"}, ("field", "shilong")),
    ({"field": "handling_unit"}, {}, ("field", None)),
])
def test_assign(assign, names, expected):
    spec = spec_with_effects({"assign": assign})
    assert plan_transition(spec, spec.transition("t"), names).assign == [expected]


def test_deadlines_start_and_stop_in_order_and_notifications_add_up():
    spec = spec_with_effects({"start_deadline": "reply"}, {"notify": ["reporter", "assignee"]},
                             {"stop_deadline": "handle"}, {"start_deadline": "handle"}, {"notify": ["reporter"]})
    plan = plan_transition(spec, spec.transition("t"), {})
    assert (plan.start, plan.stop) == (["reply", "handle"], ["handle"])
    assert plan.notify == {"reporter", "assignee"}


def test_on_create_plans_with_the_initial_state(spec):
    plan = plan_effects(spec, spec.on_create, spec.initial, {})
    assert (plan.target, plan.target_kind, plan.assign, plan.start) == ("new", "open", [("routing", True)], ["handle"])


def test_plan_for_an_unknown_target_raises(spec):
    with pytest.raises(KeyError):
        plan_effects(spec, (), "nowhere", {})


@pytest.mark.parametrize(("days", "extend"), [
    (2, [("handle", "days", 2.0), ("reply", "hours", 4.0)]),
    (0.5, [("handle", "days", 0.5), ("reply", "hours", 4.0)]),
    (0, [("reply", "hours", 4.0)]),  # nothing to add
    (-1, [("reply", "hours", 4.0)]),  # never shortens
    (None, [("reply", "hours", 4.0)]),
    ("3", [("reply", "hours", 4.0)]),  # text is not a number
    (True, [("reply", "hours", 4.0)]),  # nor is a boolean
    (1000, [("handle", "days", 1000.0), ("reply", "hours", 4.0)]),  # the most a deadline may have
    (1001, [("reply", "hours", 4.0)]),  # beyond it: no date is computed from an absurd number
    (1e300, [("reply", "hours", 4.0)]),
])
def test_extend_deadline_adds_only_a_positive_number(spec, days, extend):
    plan = plan_transition(spec, spec.transition("extend"), {"extension_days": days})
    assert plan.extend == extend
    assert all(isinstance(amount, float) for _key, _unit, amount in plan.extend)


def test_a_step_into_a_final_state_starts_and_extends_no_clock():
    spec = spec_with_effects({"start_deadline": "handle"}, {"extend_deadline": {"deadline": "reply",
                                                                               "working_days": 1}}, target="done")
    plan = plan_transition(spec, spec.transition("t"), {})
    assert plan.target_kind == "final" and (plan.start, plan.extend) == ([], [])
    assert set(plan.stop) == set(spec.deadlines)


def test_extend_by_days_and_hours_at_once_and_from_an_earlier_set():
    spec = spec_with_effects({"set": {"extra": "asked * 2"}},
                             {"extend_deadline": {"deadline": "handle", "working_days": "extra",
                                                  "working_hours": "extra / 0"}},
                             {"extend_deadline": {"deadline": "reply", "working_hours": "coalesce(extra, 0) + 1",
                                                  "working_days": 1}})
    plan = plan_transition(spec, spec.transition("t"), {"asked": 1.5})
    # days before hours within one effect; a division by zero adds nothing
    assert plan.extend == [("handle", "days", 3.0), ("reply", "days", 1.0), ("reply", "hours", 4.0)]


# -- deadline_amount -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("names", "amount"), [
    ({"size_m3": 1}, ("days", 1.0)),
    ({"size_m3": 3}, ("days", 3.0)),
    ({"size_m3": None}, ("days", 1.0)),
    ({}, ("days", 1.0)),
])
def test_deadline_amount_from_a_formula(spec, names, amount):
    assert deadline_amount(spec.deadlines["handle"], names) == amount


def test_deadline_amount_in_hours_and_without_a_formula(spec):
    assert deadline_amount(spec.deadlines["reply"], {}) == ("hours", 4.0)
    assert deadline_amount(DeadlineSpec("none", "none"), {}) is None


def test_days_win_over_hours():
    deadline = DeadlineSpec("d", "d", working_days=engine.compile_expression("2"),
                            working_hours=engine.compile_expression("5"))
    assert deadline_amount(deadline, {}) == ("days", 2.0)


@pytest.mark.parametrize(("formula", "names", "message"), [
    ("size_m3 * 2", {"size_m3": None}, "cannot be computed: empty value in arithmetic"),
    ("1 / n", {"n": 0}, "cannot be computed: division by zero"),
    ("label", {"label": "three"}, "gives text"),
    ("flag", {"flag": True}, "gives no number"),
    ("flag", {}, "gives no number"),
    ("0 - 1", {}, "cannot be negative"),
    ("1001", {}, "more than 1000"),
])
def test_deadline_amount_refuses_what_is_no_usable_amount(formula, names, message):
    deadline = DeadlineSpec("d", "d", working_days=engine.compile_expression(formula))
    with pytest.raises(DeadlineError, match=message):
        deadline_amount(deadline, names)


def test_deadline_amount_bounds_hours_separately():
    assert deadline_amount(DeadlineSpec("d", "d", working_hours=engine.compile_expression("8500")), {}) == (
        "hours", 8500.0)
    with pytest.raises(DeadlineError, match="more than 8500"):
        deadline_amount(DeadlineSpec("d", "d", working_hours=engine.compile_expression("8501")), {})


# -- a shipped workflow --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> engine.WorkflowSpec:
    text = (ROOT / "workflow_definitions" / "discover_assign_rectify_close.yaml").read_text("utf-8")
    return workflow_spec(yaml.safe_load(text))


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "workflow_definitions").glob("*.yaml")))
def test_every_shipped_workflow_compiles_and_its_transitions_join_its_states(name):
    spec = workflow_spec(yaml.safe_load((ROOT / "workflow_definitions" / name).read_text("utf-8")))
    assert spec.initial in spec.states
    assert {s.kind for s in spec.states.values()} <= {"open", "waiting", "final"}
    for t in spec.transitions:
        assert set(t.sources) <= set(spec.states) and t.target in spec.states, t.id


def test_shipped_workflow_a_case_from_report_to_close(shipped):
    dispatcher = actor(capabilities=["case.dispatch"])
    assignee = actor(relations=["assignee", "assignee_unit"])
    assert [t.id for t in available(shipped, "reported", dispatcher, {})] == ["assign", "reject"]
    assign = plan_transition(shipped, shipped.transition("assign"), {"target_unit": "shilong", "instructions": "清理"})
    assert assign.changes == {"handling_unit": "shilong", "dispatch_instructions": "清理"}
    assert (assign.assign, assign.start) == ([("field", "shilong")], ["rectify"])
    assert deadline_amount(shipped.deadlines["rectify"], {"size_m3": 5}) == ("days", 3.0)
    assert [t.id for t in available(shipped, "assigned", assignee, {})] == ["send_back", "rectify",
                                                                             "request_extension"]
    assert plan_transition(shipped, shipped.transition("rectify"), {}).stop == ["rectify"]
    # four eyes: the one who rectified may not verify, even holding case.dispatch
    worker = actor(capabilities=["case.dispatch"], relations=["assignee"], took=["rectify"])
    assert available(shipped, "rectified", worker, {}) == []
    assert [t.id for t in available(shipped, "rectified", dispatcher, {})] == ["close", "rework"]
    close = shipped.transition("close")
    assert guard_holds(close, {"verdict": "passed"}) and not guard_holds(close, {"verdict": "failed"})
    closed = plan_transition(shipped, close, {"now": NOW})
    assert (closed.target_kind, closed.changes, closed.stop) == ("final", {"closed_on": NOW}, ["rectify"])
    assert shipped.states["rejected"].counted is False and shipped.states["closed"].counted is True
    assert [t.id for t in available(shipped, "closed", actor(relations=["public_reporter"]), {})] == ["reopen"]


def test_steps_that_refuse_or_return_a_case_are_told_apart():
    """Ending a case unresolved or handing it back asks first; resolving it, or moving it on, does not."""
    root = Path(__file__).resolve().parents[2] / "workflow_definitions"
    shipped = engine.workflow_spec(yaml.safe_load((root / "discover_assign_rectify_close.yaml").read_text("utf-8")))
    found = {t.id: shipped.ending(t) for t in shipped.transitions}
    assert found["reject"] == "ends" and found["send_back"] == "returns"
    assert found["assign"] is found["rectify"] is found["close"] is found["rework"] is None
