"""The replies rendered ahead are exactly what Home Assistant says: checked against the
responses Home Assistant's intents repository expects for its own test house (kept in
tests/data/homeassistant_intents, CC BY 4.0), in English and Mandarin, numbers and plurals
included; and a large house stays within the cap, best replies first."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from home_assistant_intents import get_intents

from wyoming_indextts.homeassistant.house import Entity, House, Place
from wyoming_indextts.homeassistant.replies import (
    NumberDomains,
    expand,
    intents_language,
)
from wyoming_indextts.homeassistant.templates import environment, parsed_result, render

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "homeassistant_intents"

LIVE_VALUE_INTENTS = {
    "HassGetCurrentTime": "says the time",
    "HassGetCurrentDate": "says the date",
    "HassGetWeather": "says the weather",
    "HassClimateGetTemperature": "says a temperature measured now",
    "HassTimerStatus": "says how long running timers have left",
}
FREE_TEXT_SLOTS = ("item", "search_query", "name")
IN_WORDS = {"Temperature set to twenty point five degrees": "a number said in words (speech-to-text writes digits)"}


def load(language: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / f"{language}.yaml").read_text(encoding="utf-8"))


def house_of(doc: dict[str, Any]) -> House:
    house = doc["house"]
    return House(
        areas=tuple(Place(area["name"]) for area in house["areas"]),
        floors=tuple(Place(floor["name"]) for floor in house["floors"]),
        entities=tuple(Entity(e["id"], e["name"], device_class=e.get("device_class")) for e in house["entities"]),
    )


def responses(case: dict[str, Any]) -> list[str]:
    return case["response"] if isinstance(case["response"], list) else [case["response"]]


def numbers_for(cases: list[dict[str, Any]]) -> NumberDomains:
    """The default domains plus the numbers these test sentences say ("given its slots")."""
    said: dict[str, set[float]] = {}
    for case in cases:
        for slot, value in (case.get("slots") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                said.setdefault(slot, set()).add(value)
    base = NumberDomains()

    def plus(values: tuple[float, ...], *slots: str) -> tuple[float, ...]:
        extra = set().union(*(said.get(slot, set()) for slot in slots)) - set(values)
        return (*values, *sorted(extra))

    return NumberDomains(
        timer_hours=plus(base.timer_hours, "hours"),
        timer_minutes=plus(base.timer_minutes, "minutes"),
        timer_seconds=plus(base.timer_seconds, "seconds"),
        percent=plus(base.percent, "brightness", "volume_level", "position"),
        temperature=plus(base.temperature, "temperature"),
    )


def out_of_scope(case: dict[str, Any], language: str, names: list[str]) -> str | None:
    """Why Home Assistant's reply for this case cannot be listed in advance, or None."""
    intent, slots, response = case["intent"], case.get("slots") or {}, responses(case)[0]
    if intent not in get_intents(language)["responses"]["intents"]:
        return "not in this release of home-assistant-intents"
    if intent in LIVE_VALUE_INTENTS:
        return LIVE_VALUE_INTENTS[intent]
    if response in IN_WORDS:
        return IN_WORDS[response]
    for slot in FREE_TEXT_SLOTS:
        value = slots.get(slot)
        if isinstance(value, list):  # a wildcard's text (a timer's name, a shopping item)
            value = value[-1]
        # An entity's name is a listed name; a timer's name (a list in the fixture) is free text.
        free = slot != "name" or isinstance(slots.get(slot), list)
        if free and isinstance(value, str) and value.strip() and value.strip() in response:
            return "repeats free text the user said"
    if sum(1 for slot in ("hours", "minutes", "seconds") if slot in slots) == 3:
        return "three numbers in one duration"
    if intent == "HassGetState":
        if "name" in slots and "state" not in slots:
            return "says the entity's state now"
        if "name" in slots and response not in ("Yes", "是的"):
            return "says the entity's state now"
        if sum(1 for name in names if name in response) > 1:
            return "names two or more entities that are on now"
        if re.search(r"\d", response) and len(response) < 3 and int(re.sub(r"\D", "", response)) > 10:
            return "counts more than ten entities"
    return None


@pytest.mark.parametrize("language", ["en", "zh-cn"])
def test_every_listable_reply_home_assistant_expects_is_expanded_exactly(language):
    doc = load(language)
    house = house_of(doc)
    expansion = expand(house, [intents_language(language)], max_replies=10**6, numbers=numbers_for(doc["cases"]))
    texts = {reply.text for reply in expansion.replies}
    names = [entity.name for entity in house.entities]
    checked, skipped, missing = 0, 0, []
    for case in doc["cases"]:
        if out_of_scope(case, intents_language(language), names):
            skipped += 1
            continue
        checked += 1
        if not any(expected in texts for expected in responses(case)):
            missing.append((case["intent"], case.get("slots"), responses(case)))
    assert expansion.failed == 0
    assert not missing, f"{len(missing)} of {checked} replies Home Assistant gives are not in the expansion: {missing[:10]}"
    # The skip rules must leave most cases in: a rule that swallowed everything would pass.
    assert checked >= {"en": 220, "zh-cn": 90}[language], (checked, skipped)
    print(f"{language}: {checked} replies checked, {skipped} out of scope")


def test_numbers_and_plurals_follow_home_assistant():
    """A few replies whose wording depends on the number, from the fixtures above, named so
    a failure says which rule broke."""
    en = load("en")
    texts = {r.text for r in expand(house_of(en), ["en"], max_replies=10**6, numbers=numbers_for(en["cases"])).replies}
    for expected in (
        "Timer set for 1 hour",
        "Timer set for 1 hour and 30 minutes",
        "Timer set for 5 minutes and 30 seconds",  # "5 and a half minutes": the half is 30 seconds
        "Canceled 1 timer in kitchen.",  # the area as the user said it, lower case
        "Canceled 3 timers.",
        "No timers were canceled.",
        "Temperature set to 1 degree",
        "Temperature set to 20.5 degrees",
        "1 minute removed from timer",
    ):
        assert expected in texts, expected
    for wrong in ("Timer set for 1 hours", "Canceled 1 timers.", "Temperature set to 1 degrees"):
        assert wrong not in texts


def test_home_assistant_result_parsing_and_whitespace():
    env = environment()
    # Home Assistant reads a rendered number as a number: "1.50" is spoken "1.5".
    assert render(env.from_string("{{ '1.50' }}"), {}) == "1.5"
    assert render(env.from_string("  Yes,\n   Kitchen  "), {}) == "Yes, Kitchen"
    assert render(env.from_string("{{ 'None' }}"), {}) is None
    assert parsed_result("007") == "007"  # a leading zero keeps the text
    assert parsed_result("[1, 2]") == "[1, 2]"


def test_a_large_house_is_capped_best_replies_first():
    areas = tuple(Place(f"Room {i}") for i in range(30))
    floors = tuple(Place(f"Floor {i}") for i in range(3))
    domains = ["light", "switch", "fan", "cover", "lock", "media_player", "climate", "sensor", "binary_sensor", "scene"]
    entities = tuple(Entity(f"{domains[i % 10]}.thing_{i}", f"Thing {i}") for i in range(300))
    started = time.monotonic()
    expansion = expand(House(areas, floors, entities), ["en", intents_language("zh")], max_replies=2000)
    elapsed = time.monotonic() - started
    assert len(expansion.replies) == 2000 < expansion.available
    ranks = [reply.rank for reply in expansion.replies]
    assert ranks == sorted(ranks)
    texts = [reply.text for reply in expansion.replies]
    assert len(set(texts)) == len(texts)
    static = [reply.text for reply in expansion.replies if reply.rank == 0]
    assert "Turned on the lights" in static and "已打开" in static
    first_named = min(i for i, reply in enumerate(expansion.replies) if reply.rank == 1)
    assert texts.index("Turned on the lights") < first_named
    # Single-name replies follow the static ones: Mandarin names the thing ("Thing 7已打开").
    assert any(reply.rank == 1 and "Thing" in reply.text for reply in expansion.replies)
    print(f"expanded {expansion.available} replies for 300 entities in {elapsed:.1f} s")


def test_voice_languages_map_to_the_packages():
    assert intents_language("en") == "en"
    assert intents_language("en-US") == "en"
    assert intents_language("zh").lower() == "zh-cn"
    assert intents_language("zh-CN").lower() == "zh-cn"
    assert intents_language("tlh") is None
