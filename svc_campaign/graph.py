"""The journey graph: validation (every problem names its node) and the compiled form the engine walks.

Checked: one entry trigger node; every node has an id and a kind; every exit a node needs is set and points
at an existing node; every node is reachable from the entry (goal nodes excepted: they listen for their
event wherever the customer is); no cycle without a wait; triggers, waits, branches, splits and sends are
well formed; templates and experiments exist and match the channel and the split's arms; a journey whose purpose is
marketing has no service send (``service_send_problems``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from svc_campaign.checks import column_limit, is_service_purpose
from svc_campaign.cron import known_zone
from svc_campaign.triggers import EventMatcher, Trigger, compile_trigger
from svc_common.conditions import Compare, HasTag, Node, Scope, Source, compile_condition, walk
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

BRANCH_SCOPE = Scope(event_conditions=False)
"""Branches look at the profile (attributes, features, tags, scores, segments) and the entry event."""
MAX_NODES = 500
"""Nodes of one journey graph (drafts are refused above it at CreateJourney and UpdateJourneyDraft)."""
MAX_GRAPH_BYTES = 512 * 1024
"""Encoded bytes of one journey graph: half a listing page (svc_common.paging.PAGE_BYTES), so that a page of
ListJourneys always holds a journey with its other fields."""

# What a validation needs to know about the world: template id → its channel (None: no such template);
# experiment id → its variant keys (None: no such experiment).
TemplateLookup = Callable[[str], "int | None"]
ExperimentLookup = Callable[[str], "list[str] | None"]


@dataclass(frozen=True)
class Problem:
    node_id: str
    code: str
    message: str

    def to_proto(self) -> pb.JourneyProblem:
        return pb.JourneyProblem(node_id=self.node_id, code=self.code, message=self.message)


@dataclass
class CompiledNode:
    node: pb.JourneyNode
    kind: str
    trigger: Trigger | None = None
    branch_conditions: list[Node] = field(default_factory=list)
    wait_event: EventMatcher | None = None
    goal_event: EventMatcher | None = None
    # What the walk reads of the node at every pass, as plain values (see _plain): a protobuf field read makes a new
    # Python object each time (0.15-0.25 µs; a repeated field's unpacking 1.7 µs), and a timer's walk read ~15.
    next_node_id: str = field(init=False, default="")
    """The next node of a trigger, wait (its time or event) or send."""
    wait_kind: str | None = field(init=False, default=None)
    timeout_node_id: str = field(init=False, default="")
    suppressed_node_id: str = field(init=False, default="")
    channels: tuple[int, ...] = field(init=False, default=())
    """A send's channel and its fallbacks, in order."""
    template_id: str = field(init=False, default="")
    is_marketing: bool = field(init=False, default=False)
    exit_reason: str = field(init=False, default="")
    """An exit's reason as a participant's ``exit_reason`` holds it (``exit`` when unset; 64 characters)."""

    def __post_init__(self) -> None:
        _plain(self)


def _plain(compiled: CompiledNode) -> None:
    node, kind = compiled.node, compiled.kind
    if kind == "trigger":
        compiled.next_node_id = node.trigger.next_node_id
    elif kind == "wait":
        compiled.next_node_id = node.wait.next_node_id
        compiled.wait_kind = node.wait.WhichOneof("kind")
        compiled.timeout_node_id = node.wait.timeout_node_id
    elif kind == "send":
        send = node.send
        compiled.next_node_id, compiled.suppressed_node_id = send.next_node_id, send.suppressed_node_id
        compiled.channels = (send.channel, *send.fallback_channels)
        compiled.template_id, compiled.is_marketing = send.template_id, send.is_marketing
    elif kind == "exit":
        compiled.exit_reason = (node.exit.reason or "exit")[:64]


@dataclass
class CompiledGraph:
    entry: str
    nodes: dict[str, CompiledNode]

    @property
    def trigger(self) -> Trigger:
        trigger = self.nodes[self.entry].trigger
        assert trigger is not None
        return trigger

    def goals(self) -> list[CompiledNode]:
        return [n for n in self.nodes.values() if n.kind == "goal"]

    def wait_events(self) -> list[CompiledNode]:
        return [n for n in self.nodes.values() if n.wait_event is not None]


def exits(node: pb.JourneyNode) -> list[tuple[str, str, bool]]:
    """(field, target node id, required) of each exit of ``node``."""
    kind = node.WhichOneof("kind")
    if kind == "trigger":
        return [("trigger.next_node_id", node.trigger.next_node_id, True)]
    if kind == "wait":
        out = [("wait.next_node_id", node.wait.next_node_id, True)]
        if node.wait.WhichOneof("kind") == "until_event":
            out.append(("wait.timeout_node_id", node.wait.timeout_node_id, True))
        return out
    if kind == "branch":
        out = [(f"branch.arms[{i}].next_node_id", a.next_node_id, True) for i, a in enumerate(node.branch.arms)]
        return [*out, ("branch.default_node_id", node.branch.default_node_id, True)]
    if kind == "split":
        return [(f"split.arms[{i}].next_node_id", a.next_node_id, True) for i, a in enumerate(node.split.arms)]
    if kind == "send":
        return [
            ("send.next_node_id", node.send.next_node_id, True),
            ("send.suppressed_node_id", node.send.suppressed_node_id, False),
        ]
    return []


def _check_node(
    node: pb.JourneyNode,
    compiled: CompiledNode,
    templates: TemplateLookup,
    experiments: ExperimentLookup,
    trusted: bool = False,
) -> list[Problem]:
    nid, kind = node.node_id, compiled.kind
    problems: list[Problem] = []

    def bad(code: str, message: str) -> None:
        problems.append(Problem(nid, code, f"node {nid!r}: {message}"))

    _check_lengths(node, bad)
    try:
        if kind == "trigger":
            compiled.trigger = compile_trigger(node.trigger.trigger, "trigger.trigger")
        elif kind == "wait":
            wait = node.wait
            which = wait.WhichOneof("kind")
            if which is None:
                bad("invalid_wait", "choose duration_seconds, until_time_of_day or until_event")
            elif which == "duration_seconds" and wait.duration_seconds <= 0:
                bad("invalid_wait", "duration_seconds must be positive")
            elif which == "until_time_of_day":
                tod = wait.until_time_of_day
                if tod.hour > 23 or tod.minute > 59:
                    bad("invalid_wait", f"until_time_of_day {tod.hour}:{tod.minute:02d} is not a time of day")
                _check_zone(tod.timezone, bad)
            elif which == "until_event":
                compiled.wait_event = EventMatcher(wait.until_event.event, "wait.until_event.event")
                if wait.until_event.timeout_seconds <= 0:
                    bad("invalid_wait", "until_event.timeout_seconds must be positive")
        elif kind == "branch":
            if not node.branch.arms:
                bad("invalid_branch", "a branch needs at least one arm")
            for i, arm in enumerate(node.branch.arms):
                compiled.branch_conditions.append(
                    compile_condition(arm.condition, BRANCH_SCOPE, field=f"branch.arms[{i}].condition")
                )
        elif kind == "split" and not trusted:
            _check_split(node, experiments, bad)
        elif kind == "send" and not trusted:
            _check_send(node.send, templates, bad)
        elif kind == "goal":
            compiled.goal_event = EventMatcher(node.goal.event, "goal.event")
            if node.goal.attribution_window_seconds <= 0:
                bad("invalid_goal", "attribution_window_seconds must be positive")
    except InvalidArgument as exc:
        code = (
            "invalid_trigger" if kind == "trigger" else "invalid_condition" if kind == "branch" else f"invalid_{kind}"
        )
        bad(code, exc.message)
    return problems


def _check_lengths(node: pb.JourneyNode, bad: Callable[[str, str], None]) -> None:
    """The node's strings that the engine stores in a column of that width, and enum numbers this server knows."""
    longer = [("node_id", node.node_id, column_limit("visit", "node_id"))]
    kind = node.WhichOneof("kind")
    trigger = node.trigger.trigger
    if kind == "trigger" and trigger.WhichOneof("kind") == "scheduled":
        longer.append(
            ("scheduled.segment_id", trigger.scheduled.segment_id, column_limit("scheduled_run", "segment_id"))
        )
    segment = kind == "trigger" and trigger.WhichOneof("kind") == "segment"
    if segment and trigger.segment.change not in pb.SegmentTrigger.Change.values():
        bad("invalid_trigger", f"segment.change {trigger.segment.change} is not CHANGE_ENTERED or CHANGE_EXITED")
    if kind == "split":
        limit = column_limit("message", "variant")
        longer += [(f"split.arms[{i}].variant", a.variant, limit) for i, a in enumerate(node.split.arms)]
    for where, value, limit in longer:
        if len(value) > limit:
            bad("too_long", f"{where} has {len(value)} characters, at most {limit}")


def _check_zone(zone: str, bad: Callable[[str, str], None]) -> None:
    if zone and known_zone(zone) is None:
        bad("invalid_timezone", f"unknown time zone {zone!r}")


def _check_split(node: pb.JourneyNode, experiments: ExperimentLookup, bad: Callable[[str, str], None]) -> None:
    split = node.split
    if len(split.arms) < 2:
        bad("invalid_split", "a split needs at least two arms")
    keys = [a.variant for a in split.arms]
    if len(set(keys)) != len(keys) or "" in keys:
        bad("invalid_split", "each arm needs its own non-empty variant")
    if split.experiment_id:
        variants = experiments(split.experiment_id)
        if variants is None:
            bad("unknown_experiment", f"no experiment {split.experiment_id!r}")
        elif sorted(variants) != sorted(keys):
            bad("invalid_split", f"the arms must be the experiment's variants {sorted(variants)}")
    elif sum(a.weight_bps for a in split.arms) != 10_000:
        bad("invalid_split", "the arms' weight_bps must sum to 10000")


def _check_send(send: pb.SendNode, templates: TemplateLookup, bad: Callable[[str, str], None]) -> None:
    if send.channel == pb.CHANNEL_TYPE_UNSPECIFIED or send.channel not in pb.ChannelType.values():
        bad("unknown_channel", "choose the channel")
        return
    channel = templates(send.template_id) if send.template_id else None
    if channel is None:
        bad("unknown_template", f"no template {send.template_id!r}")
        return
    for ch in [send.channel, *send.fallback_channels]:
        if ch == pb.CHANNEL_TYPE_UNSPECIFIED or ch not in pb.ChannelType.values():
            bad("unknown_channel", f"fallback channel {ch} is not a channel")
        elif channel not in (pb.CHANNEL_TYPE_UNSPECIFIED, ch):
            bad(
                "template_channel_mismatch",
                f"template {send.template_id!r} is for {pb.ChannelType.Name(channel)}, not {pb.ChannelType.Name(ch)}"
                " (a template without a channel serves every channel)",
            )


def service_send_problems(graph: pb.JourneyGraph, purpose: str) -> list[Problem]:
    """A send left at ``is_marketing = false`` (the proto3 default) in a marketing journey: it would skip consent,
    caps and quiet hours, and reach opted-out customers without anyone having chosen that."""
    if is_service_purpose(purpose):
        return []
    return [
        Problem(
            node.node_id,
            "service_send_in_marketing_journey",
            f"node {node.node_id!r}: a send in a marketing journey must set is_marketing (consent, caps and quiet"
            " hours apply), or give the journey a service purpose",
        )
        for node in graph.nodes
        if node.WhichOneof("kind") == "send" and not node.send.is_marketing
    ]


def validate(
    graph: pb.JourneyGraph, templates: TemplateLookup, experiments: ExperimentLookup, *, trusted: bool = False
) -> tuple[list[Problem], CompiledGraph | None]:
    """Every problem of ``graph``, and its compiled form when there are none. ``trusted``: a published
    version being loaded again (templates and experiments were checked when it was published)."""
    problems: list[Problem] = []
    if not graph.nodes:
        return [Problem("", "empty", "the journey has no nodes")], None
    if len(graph.nodes) > MAX_NODES:
        return [Problem("", "too_many_nodes", f"{len(graph.nodes)} nodes, at most {MAX_NODES}")], None
    if not trusted and (size := graph.ByteSize()) > MAX_GRAPH_BYTES:
        # Not for a published version loaded again: one saved before this limit keeps running.
        return [Problem("", "too_large", f"{size} bytes encoded, at most {MAX_GRAPH_BYTES}")], None
    nodes: dict[str, CompiledNode] = {}
    for i, node in enumerate(graph.nodes):
        if not node.node_id:
            problems.append(Problem("", "missing_node_id", f"nodes[{i}] has no node_id"))
            continue
        if node.node_id in nodes:
            problems.append(Problem(node.node_id, "duplicate_node", f"node id {node.node_id!r} is used twice"))
            continue
        kind = node.WhichOneof("kind")
        if kind is None:
            problems.append(Problem(node.node_id, "missing_kind", f"node {node.node_id!r} has no kind"))
            continue
        nodes[node.node_id] = compiled = CompiledNode(node, kind)
        problems += _check_node(node, compiled, templates, experiments, trusted)
    triggers = [n for n in nodes if nodes[n].kind == "trigger"]
    entry = graph.entry_node_id or (triggers[0] if len(triggers) == 1 else "")
    if not entry or entry not in nodes:
        problems.append(Problem(entry, "missing_entry", "entry_node_id must name the trigger node"))
    elif nodes[entry].kind != "trigger":
        problems.append(Problem(entry, "missing_entry", f"entry node {entry!r} must be a trigger node"))
    problems += [
        Problem(t, "extra_trigger", f"node {t!r}: a journey has one trigger node") for t in triggers if t != entry
    ]
    for nid, compiled in nodes.items():
        for where, target, required in exits(compiled.node):
            if not target:
                if required:
                    problems.append(Problem(nid, "missing_exit", f"node {nid!r}: {where} is not set"))
            elif target not in nodes:
                problems.append(Problem(nid, "dangling_edge", f"node {nid!r}: {where} names no node {target!r}"))
    if entry in nodes:
        problems += _reachability(entry, nodes)
    problems += _cycles(nodes)
    if problems:
        return problems, None
    return [], CompiledGraph(entry, nodes)


def _targets(compiled: CompiledNode, nodes: dict[str, CompiledNode]) -> list[str]:
    return [t for _, t, _ in exits(compiled.node) if t in nodes]


def _reachability(entry: str, nodes: dict[str, CompiledNode]) -> list[Problem]:
    seen, stack = {entry}, [entry]
    while stack:
        for target in _targets(nodes[stack.pop()], nodes):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return [
        Problem(nid, "unreachable", f"node {nid!r} cannot be reached from the entry")
        for nid, c in nodes.items()
        if nid not in seen and c.kind != "goal"
    ]


def _cycles(nodes: dict[str, CompiledNode]) -> list[Problem]:
    """A cycle through no wait node would loop forever in one step."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(nodes, white)
    found: list[Problem] = []

    def visit(start: str) -> None:
        stack = [(start, iter(_targets(nodes[start], nodes)))]
        color[start] = grey
        while stack:
            nid, children = stack[-1]
            child = next(children, None)
            if child is None:
                color[nid] = black
                stack.pop()
            elif nodes[child].kind == "wait":
                continue
            elif color[child] == grey:
                found.append(Problem(child, "cycle_without_wait", f"node {child!r} is on a cycle with no wait node"))
            elif color[child] == white:
                color[child] = grey
                stack.append((child, iter(_targets(nodes[child], nodes))))

    for nid in nodes:
        if color[nid] == white and nodes[nid].kind != "wait":
            visit(nid)
    return found


_PROFILE_SOURCES = {Source.ATTRIBUTE: "attribute", Source.FEATURE: "feature", Source.TAG: "tag", Source.SCORE: "tag"}
WithheldLookup = Callable[[str, str], bool]
"""(kind "attribute" | "feature" | "tag", name) → True when svc_profile withholds that field from svc_campaign."""


def withheld_problems(graph: pb.JourneyGraph, withheld: WithheldLookup) -> list[Problem]:
    """Branch conditions on profile fields svc_profile does not show svc_campaign (level 3): the branch would see
    no value for anyone and send everyone down the default arm, silently."""
    problems: list[Problem] = []
    for node in graph.nodes:
        if node.WhichOneof("kind") != "branch":
            continue
        for i, arm in enumerate(node.branch.arms):
            where = f"branch.arms[{i}].condition"
            try:
                tree = compile_condition(arm.condition, BRANCH_SCOPE, field=where)
            except InvalidArgument:
                continue  # reported by validate()
            seen: set[tuple[str, str]] = set()
            for n in walk(tree):
                if isinstance(n, Compare) and n.source in _PROFILE_SOURCES:
                    field_ = (_PROFILE_SOURCES[n.source], n.name)
                elif isinstance(n, HasTag):
                    field_ = ("tag", n.tag_name)
                else:
                    continue
                if field_ in seen or not withheld(*field_):
                    continue
                seen.add(field_)
                problems.append(
                    Problem(
                        node.node_id,
                        "withheld_field",
                        f"node {node.node_id!r}: {where} reads {field_[0]} {field_[1]!r}, a level 3 field svc_profile "
                        "does not show svc_campaign (amounts *_fen, sensitive fields, level 3 tags): every customer "
                        "would take the default arm; branch on a tag derived from it instead, such as the finance "
                        "pack's fin_investor_tier or fin_high_net_worth",
                    )
                )
    return problems


def raise_problems(problems: list[Problem], field: str = "draft") -> None:
    """INVALID_ARGUMENT naming the first bad node (all of them in the violations)."""
    if not problems:
        return
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise InvalidArgument(
        f"{first.message}{more}",
        reason="INVALID_JOURNEY",
        violations=[
            FieldViolation(f"{field}.nodes[{p.node_id}]", f"{p.code}: {p.message}", "INVALID_JOURNEY") for p in problems
        ],
        metadata={"node_id": first.node_id, "code": first.code},
    )
