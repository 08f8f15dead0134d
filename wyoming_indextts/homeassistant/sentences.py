"""What a hassil sentence template can fill: the sets of slots one spoken sentence sets.

`turn on [the] {area} lights` always fills `area`; `timer for <timer_duration> [named
{timer_name:name}]` fills some of hours, minutes and seconds, with or without `name`. A reply
is only realistic for a set of slots one sentence fills together, so the expansion renders
each response over those sets, and no others ("Opened the" with no device class is never said).

Syntax (hassil's): `(a|b)` alternatives, `[a]` optional, `(a;b)` permutation (any order),
`<rule>` an expansion rule, `{list}` or `{list:slot}` a slot filled from a list.
"""

from __future__ import annotations

from collections.abc import Mapping

SlotSet = frozenset[tuple[str, str]]
"""(list, slot) pairs one sentence fills."""

MAX_SETS = 256
"""A bound on the sets one template yields; hassil's own templates stay far below it."""


def slot_sets(template: str, rules: Mapping[str, str]) -> set[SlotSet]:
    sets, _ = _parse(template, 0, "", rules, frozenset())
    return sets


def alternatives(template: str) -> list[str]:
    """The texts a list value's template matches: `curtain[s]` → curtain, curtains;
    `(closed|shut)` → closed, shut."""
    texts, _ = _texts(template, 0, "")
    result: list[str] = []
    for text in texts:
        text = " ".join(text.split())
        if text and text not in result:
            result.append(text)
    return result


def _parse(template: str, index: int, closing: str, rules: Mapping[str, str], seen: frozenset[str]) -> tuple[set[SlotSet], int]:
    """Slot sets from `index` to the `closing` bracket; returns them and the index after it."""
    choices: set[SlotSet] = set()
    current: set[SlotSet] = {frozenset()}
    while index < len(template):
        char = template[index]
        if char in "([":
            inner, index = _parse(template, index + 1, ")" if char == "(" else "]", rules, seen)
            if char == "[":
                inner = inner | {frozenset()}
            current = _combine(current, inner)
            continue
        if char == "{":
            end = template.find("}", index)
            if end < 0:
                break
            list_name, _, slot = template[index + 1 : end].partition(":")
            current = _combine(current, {frozenset({(list_name, slot or list_name)})})
            index = end + 1
            continue
        if char == "<":
            end = template.find(">", index)
            if end < 0:
                break
            name = template[index + 1 : end]
            if name in rules and name not in seen:
                inner, _ = _parse(rules[name], 0, "", rules, seen | {name})
                current = _combine(current, inner)
            index = end + 1
            continue
        if closing and char == closing:
            return choices | current, index + 1
        if char == "|":
            choices |= current
            current = {frozenset()}
        index += 1
    return choices | current, index


def _combine(left: set[SlotSet], right: set[SlotSet]) -> set[SlotSet]:
    combined = {a | b for a in left for b in right}
    return combined if len(combined) <= MAX_SETS else set(sorted(combined, key=len)[:MAX_SETS])


def _texts(template: str, index: int, closing: str) -> tuple[list[str], int]:
    choices: list[str] = []
    current = [""]
    while index < len(template):
        char = template[index]
        if char in "([":
            inner, index = _texts(template, index + 1, ")" if char == "(" else "]")
            if char == "[":
                inner = [*inner, ""]
            current = [a + b for a in current for b in inner]
            continue
        if closing and char == closing:
            return [*choices, *current], index + 1
        if char == "|":
            choices.extend(current)
            current = [""]
        else:
            current = [text + char for text in current]
        index += 1
    return [*choices, *current], index
