"""Response templates rendered as Home Assistant renders them, so the text matches its own.

Home Assistant's default conversation agent renders an intent's response template with its
template engine (a Jinja `ImmutableSandboxedEnvironment`; an undefined value renders as
nothing), passes the result through `Template.async_render`'s result parsing (a rendered
text that reads as a Python number comes back as that number: "1.50" is spoken "1.5"), then
collapses whitespace (`" ".join(speech.strip().split())`). Error replies skip the last step.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_IS_NUMERIC = re.compile(r"^[+-]?(?!0\d)\d*(?:\.\d*)?$")
"""Home Assistant's test for a rendered number it may turn into int or float."""


class RenderError(Exception):
    """A template that Jinja could not render."""


def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment()


def compile_template(env: ImmutableSandboxedEnvironment, source: str) -> Template:
    try:
        return env.from_string(source)
    except TemplateError as err:
        raise RenderError(f"{type(err).__name__}: {err}") from err


def parsed_result(rendered: str) -> str | None:
    """What `Template.async_render(parse_result=True)` returns, as text; None when Home
    Assistant would get None (a template rendering "None": no speech at all)."""
    try:
        result = ast.literal_eval(rendered)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return rendered
    if result is None:
        return None
    if isinstance(result, bool):
        return str(result)
    if isinstance(result, (int, float)):
        return str(result) if _IS_NUMERIC.match(rendered) else rendered
    # Strings, complex numbers and containers come back as the text that was rendered.
    return rendered


def render(template: Template, variables: Mapping[str, Any], normalize: bool = True) -> str | None:
    """The text Home Assistant sends to TTS for these variables; None for no speech."""
    try:
        rendered = template.render(variables)
    except (TemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError) as err:
        raise RenderError(f"{type(err).__name__}: {err}") from err
    result = parsed_result(rendered)
    if result is None or not normalize:
        return result
    return " ".join(result.strip().split())
