"""The names of one house, as Home Assistant's default agent matches and repeats them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Place:
    """An area or a floor."""

    name: str
    aliases: tuple[str, ...] = ()

    def spoken(self) -> tuple[str, ...]:
        return spoken_forms(self.name, self.aliases)


@dataclass(frozen=True)
class Entity:
    entity_id: str
    name: str
    """The friendly name Home Assistant matches `{name}` against."""
    aliases: tuple[str, ...] = ()
    device_class: str | None = None

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]

    def spoken(self) -> tuple[str, ...]:
        return spoken_forms(self.name, self.aliases)


@dataclass(frozen=True)
class House:
    areas: tuple[Place, ...] = ()
    floors: tuple[Place, ...] = ()
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    """The entities exposed to Assist: only those can be named in a command."""


def spoken_forms(name: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    """How a name comes back in a reply. Home Assistant fills `{{ slots.area }}` with the text
    the user said (hassil's matched input), as speech-to-text wrote it: the registered name,
    an alias, or, for Latin names, the same words in lower case (what Whisper and Home
    Assistant Cloud write for "turn on the kitchen lights"). The registered form comes first."""
    forms: list[str] = []
    for text in (name, *aliases):
        for form in (text.strip(), text.strip().lower()):
            if form and form not in forms:
                forms.append(form)
    return tuple(forms)
