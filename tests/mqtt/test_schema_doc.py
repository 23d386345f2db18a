"""The documented schema and the models agree: every example in
dialer/mqtt_events.md validates, and every kind, action and topic is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dialer.mqtt
from dialer.mqtt_schema import (
    CONTROL_ACTIONS,
    CONTROL_REQUEST,
    EVENT_MESSAGE,
    TOPIC_SUFFIX,
    ControlResult,
    json_schemas,
)

DOC = Path(dialer.mqtt.__file__).with_name("mqtt_events.md").read_text()


def examples() -> list[dict[str, object]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.S)]


def test_every_example_in_the_doc_validates_against_the_models() -> None:
    kinds, actions, results = set(), set(), []
    for ex in examples():
        if "kind" in ex:
            kinds.add(EVENT_MESSAGE.validate_python(ex).kind)
        elif "action" in ex and "ok" not in ex:
            actions.add(CONTROL_REQUEST.validate_python(ex).action)
        else:
            results.append(ControlResult.model_validate(ex))
    assert kinds == set(TOPIC_SUFFIX)
    assert actions == set(CONTROL_ACTIONS)
    assert {r.ok for r in results} == {True, False}


def test_topics_are_documented_in_the_markdown_and_the_docstring() -> None:
    doc = dialer.mqtt.__doc__ or ""
    for suffix in [*TOPIC_SUFFIX.values(), "control", "control/result"]:
        topic = f"{{prefix}}/{{campaign}}/{suffix}"
        assert f"`{topic}`" in DOC, topic
        assert topic in doc, topic


def test_json_schema_export_names_every_field() -> None:
    schemas = json.dumps(json_schemas())
    for field in ["call_id", "from", "state", "blockers", "severity", "value_pct", "reason"]:
        assert f'"{field}"' in schemas, field
