"""The exact replies Home Assistant's Assist gives in one house, ranked and capped.

Each response template of `home-assistant-intents` (the package Home Assistant's default
agent reads them from) is rendered over the slot values the intent's sentences can fill:
this house's names for `{name}`, `{area}` and `{floor}`, the words of the intents' own lists
(`curtains`, `garage door`), and for numbers a small ranked domain (`NumberDomains`). A
render that reads anything else, such as an entity's live state, the time, a free-text slot
(a shopping-list item, a timer's name) or a value an intent handler computes, depends on a
value nobody can list in advance and is dropped; the same template still gives its other
replies ("Yes", "No", "Not any").

Ranking, most likely first: replies with no name and no number ("Turned on the lights"),
then those naming one thing ("厨房灯已打开"), then numbers (timer durations, percentages),
then the rest; within a rank the common intents (on/off, lights, timers) go first.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from home_assistant_intents import get_intents, get_languages
from jinja2 import Template, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .house import Entity, House
from .sentences import alternatives, slot_sets
from .templates import RenderError, compile_template, environment, render

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_REPLIES = 2000

PLACE_SLOTS = ("name", "area", "floor")
"""Slots filled with the house's names."""

INTENT_ORDER = (
    "HassTurnOn",
    "HassTurnOff",
    "errors",
    "HassLightSet",
    "HassStartTimer",
    "HassCancelTimer",
    "HassCancelAllTimers",
    "HassPauseTimer",
    "HassUnpauseTimer",
    "HassIncreaseTimer",
    "HassDecreaseTimer",
    "HassGetState",
    "HassMediaPause",
    "HassMediaUnpause",
    "HassMediaNext",
    "HassMediaPrevious",
    "HassSetVolume",
    "HassClimateSetTemperature",
    "HassSetPosition",
)
"""Intents most households use most, first; the others follow in the package's order."""

HANDLER_SLOTS = frozenset({"timers", "canceled", "time", "date", "media"})
"""Slots Home Assistant's intent handlers add to the reply (the timers, the time...)."""

SPEECH_SLOTS: Mapping[str, Mapping[str, str]] = {"HassCancelAllTimers": {"canceled": "counts"}}
"""Handler slots whose values form a small domain: name → the `NumberDomains` field they
are drawn from. The other handler slots are unknown here."""

MAX_COUNTED = 10
"""The highest count rendered for "how many ... are on?"."""

_PRINTED_NONE = re.compile(r"\bNone\b")
"""Python's None printed into a reply: the template had no entry for a value (HassTurnOn's
name for a domain it does not turn on); Home Assistant would fail before saying it."""


@dataclass(frozen=True)
class NumberDomains:
    """The numbers tried for a slot a user fills with a number, most said first. A timer
    can run for any of 100 hours × 100 minutes × 100 seconds and a light be set to any of
    101 percentages; these are the values people say most, so their replies are rendered
    ahead and the rest are spoken live by the fallback voice."""

    timer_hours: tuple[int, ...] = (1, 2)
    timer_minutes: tuple[int, ...] = (5, 10, 1, 2, 3, 15, 20, 30, 45)
    timer_seconds: tuple[int, ...] = (30, 10, 15, 20, 45)
    percent: tuple[int, ...] = (50, 100, 10, 20, 30, 40, 60, 70, 80, 90)
    temperature: tuple[float, ...] = (20, 21, 22, 19, 23, 18, 24, 25)
    counts: tuple[int, ...] = (0, 1, 2, 3)

    def for_range(self, list_name: str, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """The slot texts tried for a `range` list (what speech-to-text writes: digits)."""
        if list_name in ("timer_hours", "timer_minutes", "timer_seconds"):
            numbers: tuple[float, ...] = getattr(self, list_name)
        elif spec.get("type") == "temperature":
            numbers = self.temperature
        else:
            numbers = self.percent
        low, high = spec.get("from", 0), spec.get("to", 100)
        return tuple(_number_text(n) for n in numbers if low <= n <= high)


@dataclass(frozen=True)
class Reply:
    text: str
    language: str
    intent: str
    response: str
    rank: int
    """0: no name, no number; 1: one name; 2: numbers, no name; 3: the rest."""


@dataclass
class Expansion:
    replies: list[Reply] = field(default_factory=list)
    """Ranked, deduplicated, capped."""
    available: int = 0
    """How many distinct replies there were before the cap."""
    failed: int = 0
    """Templates that could not be rendered (skipped, logged once each)."""


def intents_language(code: str) -> str | None:
    """The `home-assistant-intents` language for a voice's language code, matched as Home
    Assistant does (case-insensitive, `en-US` → `en`); a bare `zh` is Mandarin in simplified
    script, the package's `zh-cn`."""
    available = {language.lower(): language for language in get_languages()}
    wanted = code.replace("_", "-").lower()
    base = wanted.split("-")[0]
    for candidate in (wanted, "zh-cn" if base == "zh" and wanted in ("zh", "zh-hans") else base):
        if candidate in available:
            return available[candidate]
    return None


def expand(
    house: House,
    languages: list[str],
    max_replies: int = DEFAULT_MAX_REPLIES,
    numbers: NumberDomains | None = None,
) -> Expansion:
    """Every reply of the given `home-assistant-intents` languages for this house, best first."""
    numbers = numbers or NumberDomains()
    # One entry per text: the same words in two languages ("0") are one sentence to render.
    found: dict[str, Reply] = {}
    failed = 0
    sequence: dict[str, int] = {}
    for language in languages:
        data = get_intents(language)
        if data is None:
            _LOGGER.warning("home-assistant-intents has no language %s; no replies rendered ahead for it", language)
            continue
        expander = _LanguageExpander(language, data, house, numbers)
        for reply in expander.replies():
            best = found.get(reply.text)
            if best is None or reply.rank < best.rank:
                found[reply.text] = reply
                sequence.setdefault(reply.text, len(sequence))
        failed += expander.failed
    order = {intent: index for index, intent in enumerate(INTENT_ORDER)}
    language_order = {language: index for index, language in enumerate(languages)}
    ranked = sorted(
        found.values(),
        key=lambda r: (
            r.rank,
            order.get(r.intent, len(order)),
            language_order.get(r.language, 0),
            sequence[r.text],
        ),
    )
    return Expansion(replies=ranked[:max_replies], available=len(ranked), failed=failed)


class _Reads:
    """What one render looked at."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.numbers = False
        self.unknown = False


_CURRENT: contextvars.ContextVar[_Reads] = contextvars.ContextVar("ha_reply_reads")
"""The render under way: `state_attr` is a global of the environment, shared by all renders."""


class _Slots(dict):
    """The `slots` a template sees, noting which kind of value each read gave. A slot the
    sentence did not fill is absent (undefined), as in Home Assistant; an `unknown` one has
    a value this house cannot know (a free-text item, the time, the timers): reading it
    marks the render unknown."""

    def __init__(self, values: Mapping[str, Any], kinds: Mapping[str, str], unknown: frozenset[str]) -> None:
        super().__init__(values)
        self.kinds = kinds
        self.unknown = unknown

    def __getitem__(self, key: str) -> Any:
        reads = _CURRENT.get()
        if not dict.__contains__(self, key):
            if key in self.unknown:
                reads.unknown = True
            raise KeyError(key)
        value = dict.__getitem__(self, key)
        kind = self.kinds.get(key)
        if kind == "place":
            reads.names.add(str(value))
        elif kind == "number":
            reads.numbers = True
        return value


class _State:
    """`state` (the first matched entity) as far as the house's names know it: its name
    and kind, never its live state or attributes."""

    def __init__(self, entity: Entity | None, domain: str | None) -> None:
        self._entity = entity
        self._domain = entity.domain if entity is not None else domain

    @property
    def domain(self) -> str | None:
        if self._domain is None:
            _CURRENT.get().unknown = True
        return self._domain

    @property
    def name(self) -> str:
        if self._entity is None:
            _CURRENT.get().unknown = True
            return ""
        _CURRENT.get().names.add(self._entity.name)
        return self._entity.name

    @property
    def entity_id(self) -> str:
        if self._entity is None:
            _CURRENT.get().unknown = True
            return ""
        return self._entity.entity_id

    def __getattr__(self, attribute: str) -> Any:
        # state, state_with_unit, attributes, last_changed...: live values.
        _CURRENT.get().unknown = True
        raise AttributeError(attribute)


def _state_attr(*_: Any) -> None:
    _CURRENT.get().unknown = True


@dataclass(frozen=True)
class _Block:
    """One `data` block of an intent: the sentences that lead to one response."""

    response: str
    fixed: Mapping[str, Any]
    slot_sets: tuple[frozenset[str], ...]
    """The sets of slots one of its sentences fills together."""
    lists: Mapping[str, tuple[str, ...]]
    """Slot → the lists its sentences fill it from (`seconds`: timer_seconds, timer_half)."""
    domains: frozenset[str] | None
    """Domains a named entity must have (None: any)."""
    excluded: frozenset[str]
    device_classes: frozenset[str] | None


_Choice = tuple[tuple[str, Any], ...]
"""One slot's value as (slot, value) pairs; a named entity adds ("", Entity)."""


class _LanguageExpander:
    def __init__(self, language: str, data: Mapping[str, Any], house: House, numbers: NumberDomains) -> None:
        self.language = language
        self.data = data
        self.house = house
        self.numbers = numbers
        self.env: ImmutableSandboxedEnvironment = environment()
        self.env.globals["state_attr"] = _state_attr
        self.failed = 0
        self._rules: Mapping[str, str] = data.get("expansion_rules", {})
        self._lists: Mapping[str, Any] = data.get("lists", {})

    def replies(self) -> Iterator[Reply]:
        responses = self.data.get("responses", {})
        for key, source in responses.get("errors", {}).items():
            yield from self._error_reply(key, source)
        for intent, templates in responses.get("intents", {}).items():
            blocks = self._blocks(intent)
            for response, source in templates.items():
                template = self._compile(f"{intent}/{response}", source)
                if template is None:
                    continue
                references = _references(self.env, source)
                chosen = [block for block in blocks if block.response == response]
                yield from self._intent_replies(intent, response, source, template, references, chosen)

    def _compile(self, label: str, source: str) -> Template | None:
        try:
            return compile_template(self.env, source)
        except RenderError as err:
            self._failed(label, err)
            return None

    def _failed(self, label: str, err: RenderError) -> None:
        self.failed += 1
        _LOGGER.warning("Skipping Home Assistant response %s/%s: %s", self.language, label, err)

    def _error_reply(self, key: str, source: str) -> Iterator[Reply]:
        """Error replies get keyword arguments (area, entity...): those with none are
        fixed sentences ("Sorry, I couldn't understand that"); the others name things the
        house lacks, which no list holds."""
        template = self._compile(f"errors/{key}", source)
        if template is None or meta.find_undeclared_variables(self.env.parse(source)):
            return
        try:
            text = render(template, {}, normalize=False)
        except RenderError as err:
            self._failed(f"errors/{key}", err)
            return
        if text:
            yield Reply(text, self.language, "errors", key, 0)

    def _intent_replies(
        self, intent: str, response: str, source: str, template: Template, references: _References, blocks: list[_Block]
    ) -> Iterator[Reply]:
        seen: set[tuple] = set()
        for block in blocks or [_Block(response, {}, (frozenset(),), {}, None, frozenset(), None)]:
            for slots, entity in self._contexts(intent, block, references):
                signature = (tuple(sorted((k, str(v)) for k, v in slots.items())), slots.unknown, entity)
                if signature in seen:
                    continue
                seen.add(signature)
                queries = _queries(entity, block, "query" in references.entity, self.house)
                for matched, unmatched, state in queries:
                    reads = _Reads()
                    token = _CURRENT.set(reads)
                    try:
                        variables = {"slots": slots, "state": state, "query": {"matched": matched, "unmatched": unmatched}}
                        text = render(template, variables)
                    except RenderError as err:
                        if reads.unknown:
                            continue  # it tripped over a value it cannot have here: no reply to list
                        self._failed(f"{intent}/{response}", err)
                        return  # counted and logged once: the template is skipped
                    finally:
                        _CURRENT.reset(token)
                    if not text or reads.unknown or (_PRINTED_NONE.search(text) and "None" not in source):
                        continue
                    if len(reads.names) > 1 or (reads.numbers and reads.names):
                        rank = 3
                    elif reads.numbers:
                        rank = 2
                    else:
                        rank = len(reads.names)
                    yield Reply(text, self.language, intent, response, rank)

    def _kind(self, slot: str, list_names: tuple[str, ...]) -> str:
        if slot in PLACE_SLOTS and all(name in PLACE_SLOTS for name in list_names):
            return "place"
        specs = [self._lists.get(name) for name in list_names]
        if any(not isinstance(spec, Mapping) or "wildcard" in spec for spec in specs):
            return "free"
        return "number" if any("range" in spec for spec in specs if isinstance(spec, Mapping)) else "word"

    def _contexts(self, intent: str, block: _Block, references: _References) -> Iterator[tuple[_Slots, Entity | None]]:
        """The slots one sentence of the block fills, each over its domain. A slot the
        template never reads changes nothing and keeps one stand-in value, except `name`
        when the template reads `state` (the named entity). A free-text slot (an item, a
        timer's name) is present but unknown: a reply that reads it is dropped."""
        speech = SPEECH_SLOTS.get(intent, {})
        for filled in block.slot_sets:
            kinds = {slot: self._kind(slot, block.lists[slot]) for slot in filled if slot not in block.fixed}
            varied = [
                slot
                for slot, kind in kinds.items()
                if kind != "free" and (slot in references.slots or (slot == "name" and references.entity))
            ]
            if len(varied) > 2:
                continue  # three names in one reply: too many combinations, too rarely said
            unknown = frozenset(slot for slot, kind in kinds.items() if kind == "free") | (HANDLER_SLOTS - set(speech))
            choices: list[list[_Choice]] = [self._values(block, slot, kinds[slot]) for slot in varied]
            choices += [[((slot, n),) for n in getattr(self.numbers, domain)] for slot, domain in speech.items()]
            slot_kinds = {**kinds, **{slot: "number" for slot in speech}}
            for assignment in itertools.product(*choices):
                values = dict(block.fixed)
                entity: Entity | None = None
                for slot, value in itertools.chain.from_iterable(assignment):
                    if isinstance(value, Entity):
                        entity = value
                    else:
                        values[slot] = value
                yield _Slots(values, slot_kinds, unknown), entity

    def _values(self, block: _Block, slot: str, kind: str) -> list[_Choice]:
        choices: list[_Choice] = []
        for list_name in block.lists[slot]:
            for choice in self._list_values(block, slot, kind, list_name):
                if choice not in choices:
                    choices.append(choice)
        return choices

    def _list_values(self, block: _Block, slot: str, kind: str, list_name: str) -> list[_Choice]:
        if kind == "place":
            if list_name == "name":
                return [
                    ((slot, form), ("", entity))
                    for entity in self.house.entities
                    if _entity_fits(entity, block)
                    for form in entity.spoken()
                ]
            places = self.house.areas if list_name == "area" else self.house.floors
            return [((slot, form),) for place in places for form in place.spoken()]
        spec = self._lists[list_name]
        if "range" in spec:
            return [((slot, text),) for text in self.numbers.for_range(list_name, spec["range"])]
        texts: list[str] = []
        for value in spec.get("values", []):
            spoken = value.get("in", "") if isinstance(value, Mapping) else str(value)
            texts += [text for text in alternatives(str(spoken)) if text not in texts]
        return [((slot, text),) for text in texts]

    def _blocks(self, intent: str) -> list[_Block]:
        blocks = []
        for data in self.data.get("intents", {}).get(intent, {}).get("data", []):
            rules = {**self._rules, **data.get("expansion_rules", {})}
            found: set[frozenset[tuple[str, str]]] = set()
            for sentence in data.get("sentences", []):
                found |= slot_sets(sentence, rules)
            lists: dict[str, tuple[str, ...]] = {}
            for list_name, slot in sorted(pair for filled in found for pair in filled):
                if list_name not in lists.get(slot, ()):
                    lists[slot] = (*lists.get(slot, ()), list_name)
            requires = data.get("requires_context", {})
            excludes = data.get("excludes_context", {})
            fixed = data.get("slots", {})
            blocks.append(
                _Block(
                    response=data.get("response", "default"),
                    fixed=fixed,
                    slot_sets=tuple(sorted({frozenset(slot for _, slot in filled) for filled in found}, key=sorted)),
                    lists=lists,
                    domains=_as_set(requires.get("domain", fixed.get("domain"))),
                    excluded=_as_set(excludes.get("domain")) or frozenset(),
                    device_classes=_as_set(requires.get("device_class", fixed.get("device_class"))),
                )
            )
        return blocks


@dataclass(frozen=True)
class _References:
    slots: frozenset[str]
    """`slots.X` the template may read."""
    entity: frozenset[str]
    """Which of `state`, `query` it reads (both follow the named entity)."""


def _references(env: ImmutableSandboxedEnvironment, source: str) -> _References:
    tree = env.parse(source)
    slots = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "slots":
            if isinstance(node, nodes.Getattr):
                slots.add(node.attr)
            elif isinstance(node.arg, nodes.Const):
                slots.add(str(node.arg.value))
    names = {node.name for node in tree.find_all(nodes.Name)}
    return _References(frozenset(slots), frozenset(names & {"state", "query"}))


def _queries(
    entity: Entity | None, block: _Block, reads_query: bool, house: House
) -> list[tuple[list[_State], list[_State], _State]]:
    """(matched, unmatched, state) variants. With a name, that entity is `state` and, for a
    question, it matched or did not. With no name, an intent's single domain stands for the
    entity (name and state unknown), and a question ("are any lights on?", "which...",
    "how many...") was answered by one entity that fits, or by a few unnamed ones."""
    domain = next(iter(block.domains)) if block.domains is not None and len(block.domains) == 1 else None
    state = _State(entity, domain)
    if not reads_query:
        return [([state], [], state)]
    answers = [state] if entity is not None else [_State(fits, None) for fits in house.entities if _entity_fits(fits, block)]
    variants = [([], [], _State(None, None))]
    for answer in answers:
        variants += [([answer], [], answer), ([], [answer], answer)]
    if entity is None:
        # "How many lights are on?": any number up to the entities that fit (at most 10).
        unnamed = _State(None, domain)
        for count in range(2, min(len(answers), MAX_COUNTED) + 1):
            variants += [([unnamed] * count, [], unnamed), ([], [unnamed] * count, unnamed)]
    return variants


def _entity_fits(entity: Entity, block: _Block) -> bool:
    if block.domains is not None and entity.domain not in block.domains:
        return False
    if entity.domain in block.excluded:
        return False
    return block.device_classes is None or entity.device_class in block.device_classes


def _as_set(value: Any) -> frozenset[str] | None:
    if value is None or isinstance(value, Mapping):
        return None
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value)
    return frozenset({str(value)})


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
