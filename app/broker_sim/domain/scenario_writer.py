"""Writing a scenario back to TOML, in the same shape the reader takes."""

from __future__ import annotations

from typing import Any

import tomli_w

from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    RejectSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.domain.timeline import STEP_FIELDS, STEP_REQUIRED, Expectation, Step


def _drop_defaults(obj: Any, defaults: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__slots__:
        value = getattr(obj, name)
        if value is None or value == getattr(defaults, name):
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _exchange(e: ExchangeSpec) -> dict[str, Any]:
    return {"name": e.name, "type": e.type, **_drop_defaults(e, ExchangeSpec(e.name, e.type))}


def _queue(q: QueueSpec) -> dict[str, Any]:
    return {"name": q.name, **_drop_defaults(q, QueueSpec(q.name))}


def _bindings(bindings: tuple[BindingSpec, ...]) -> list[dict[str, Any]]:
    # The reader takes several keys per binding entry: group them back by (exchange, queue).
    out: list[dict[str, Any]] = []
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for b in bindings:
        ends: dict[str, Any] = {"exchange": b.exchange}
        ends.update({"to_exchange": b.to_exchange} if b.to_exchange else {"queue": b.queue})
        if b.match:
            out.append({**ends, "match": b.match, "headers": dict(b.headers)})
            continue
        entry = keyed.get((b.exchange, b.queue, b.to_exchange))
        if entry is None:
            entry = keyed[(b.exchange, b.queue, b.to_exchange)] = {**ends, "keys": []}
            out.append(entry)
        entry["keys"].append(b.routing_key)
    return out


def _producer(p: ProducerSpec) -> dict[str, Any]:
    data = {"name": p.name, "exchange": p.exchange, **_drop_defaults(p, ProducerSpec(p.name, p.exchange))}
    if "headers" in data:
        data["headers"] = [dict(h) for h in p.headers]
    return data


def _consumer(c: ConsumerGroupSpec) -> dict[str, Any]:
    data = {"name": c.name, "queue": c.queue, **_drop_defaults(c, ConsumerGroupSpec(c.name, c.queue))}
    if "work" in data:
        data["work"] = _drop_defaults(c.work, WorkSpec(kind="image" if c.work.kind != "image" else "delay"))
        data["work"]["kind"] = c.work.kind
    if "reject" in data:
        data["reject"] = _drop_defaults(c.reject, RejectSpec())
    return data


def _step(s: Step) -> dict[str, Any]:
    # Required fields stay even at their default (a prefetch of 0 is a real choice).
    data = {"at": s.at, "action": s.action, **_drop_defaults(s, Step(at=s.at, action=s.action))}
    data.update({name: getattr(s, name) for name in STEP_REQUIRED.get(s.action, set())})
    return {k: v for k, v in data.items() if k in {"at", "action"} | STEP_FIELDS[s.action]}


def _expectation(e: Expectation) -> dict[str, Any]:
    return {"metric": e.metric, **_drop_defaults(e, Expectation(metric=e.metric))}


def scenario_to_toml(scenario: Scenario, comment: str = "") -> str:
    """The scenario as a TOML document that :func:`parse_scenario` reads back to an equal scenario."""
    doc: dict[str, Any] = {"name": scenario.name, "title": scenario.title}
    for key in ("description", "help", "seed", "duration"):
        value = getattr(scenario, key)
        if value:
            doc[key] = value
    tables = {
        "exchanges": [_exchange(e) for e in scenario.exchanges],
        "queues": [_queue(q) for q in scenario.queues],
        "bindings": _bindings(scenario.bindings),
        "producers": [_producer(p) for p in scenario.producers],
        "consumers": [_consumer(c) for c in scenario.consumers],
        "timeline": [_step(s) for s in scenario.timeline],
        "expect": [_expectation(e) for e in scenario.expectations],
    }
    doc.update({k: v for k, v in tables.items() if v})
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + tomli_w.dumps(doc, multiline_strings=True)
