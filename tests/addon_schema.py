"""The rules the Home Assistant Supervisor applies to an add-on repository, written from its
developer documentation (developers.home-assistant.io: docs/add-ons/configuration.md and
repository.md): required and optional keys of config.yaml and their types, the option-schema
grammar, build.yaml, translations, repository.yaml. Each check returns the problems it found,
as sentences; an empty list means the file passes."""

from __future__ import annotations

import re
from typing import Any

ARCHES = {"armhf", "armv7", "aarch64", "amd64", "i386"}
MAP_TYPES = {"homeassistant_config", "addon_config", "ssl", "addons", "backup", "share", "media", "all_addon_configs", "data"}
STARTUP = {"initialize", "system", "services", "application", "once"}
BOOT = {"auto", "manual", "manual_only"}
STAGES = {"stable", "experimental", "deprecated"}
ROLES = {"default", "homeassistant", "backup", "manager", "admin"}

REQUIRED = {"name": str, "version": str, "slug": str, "description": str, "arch": list}
# The documented optional keys with their types ("list", "dict", "bool", ...).
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "machine": list, "url": str, "startup": str, "webui": str, "boot": str, "ports": dict,
    "ports_description": dict, "host_network": bool, "host_ipc": bool, "host_dbus": bool,
    "host_pid": bool, "host_uts": bool, "devices": list, "homeassistant": str, "hassio_role": str,
    "hassio_api": bool, "homeassistant_api": bool, "docker_api": bool, "privileged": list,
    "full_access": bool, "apparmor": (bool, str), "map": list, "environment": dict, "audio": bool,
    "video": bool, "gpio": bool, "usb": bool, "uart": bool, "udev": bool, "devicetree": bool,
    "kernel_modules": bool, "stdin": bool, "legacy": bool, "options": dict, "schema": (dict, bool),
    "image": str, "codenotary": str, "timeout": int, "tmpfs": bool, "discovery": list,
    "services": list, "auth_api": bool, "ingress": bool, "ingress_port": int,
    "ingress_entry": str, "ingress_stream": bool, "panel_icon": str, "panel_title": str,
    "panel_admin": bool, "backup": str, "backup_pre": str, "backup_post": str,
    "backup_exclude": list, "advanced": bool, "stage": str, "init": bool, "watchdog": str,
    "realtime": bool, "journald": bool, "breaking_versions": list, "ulimits": dict,
}

# The documented option types: str, bool, int, float (each with an optional (min,max)),
# email, url, password, port, match(REGEX), list(a|b|...), device(filter); `?` makes it optional.
SCHEMA_ELEMENT = re.compile(
    r"^(?:bool|email|url|port|device(?:\(.+\))?"
    r"|(?P<kind>str|password|int|float)(?:\((?P<min>[-\d.]*),(?P<max>[-\d.]*)\))?"
    r"|match\((?P<match>.+)\)|list\((?P<list>.+)\))(?P<optional>\?)?$"
)
PORT_KEY = re.compile(r"^\d{1,5}/(?:tcp|udp)$")
SLUG = re.compile(r"^[a-z0-9_]+$")
IMAGE_REF = re.compile(r"^[a-z0-9.\-]+(?::\d+)?(?:/[a-z0-9._\-{}]+)+(?::[\w.\-]+)?$")


def _typed(where: str, value: Any, expected: type | tuple[type, ...]) -> list[str]:
    # YAML booleans are ints in Python: a bool is never an int here.
    if isinstance(value, bool) and expected is int:
        return [f"{where}: expected int, got a boolean"]
    return [] if isinstance(value, expected) else [f"{where}: expected {expected}, got {type(value).__name__}"]


def check_config(config: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key, expected in REQUIRED.items():
        if key not in config:
            problems.append(f"required key {key!r} is missing")
        else:
            problems += _typed(key, config[key], expected)
    for key, value in config.items():
        if key in REQUIRED:
            continue
        if key not in OPTIONAL:
            problems.append(f"unknown key {key!r}")
            continue
        problems += _typed(key, value, OPTIONAL[key])
    if problems:
        return problems

    if not SLUG.match(config["slug"]):
        problems.append(f"slug {config['slug']!r} is not URI friendly (lower case letters, digits, _)")
    problems += [f"arch: unknown architecture {arch!r}" for arch in config["arch"] if arch not in ARCHES]
    for key, allowed in (("startup", STARTUP), ("boot", BOOT), ("stage", STAGES), ("hassio_role", ROLES)):
        if key in config and config[key] not in allowed:
            problems.append(f"{key}: {config[key]!r} is not one of {sorted(allowed)}")
    for entry in config.get("map", []):
        kind = entry.get("type") if isinstance(entry, dict) else str(entry).split(":")[0]
        if kind not in MAP_TYPES:
            problems.append(f"map: unknown type {kind!r}")
        if isinstance(entry, dict) and "read_only" in entry and not isinstance(entry["read_only"], bool):
            problems.append(f"map: read_only of {kind!r} must be a boolean")
    for key, host_port in config.get("ports", {}).items():
        if not PORT_KEY.match(str(key)):
            problems.append(f"ports: {key!r} is not 'PORT/tcp' or 'PORT/udp'")
        if host_port is not None and (isinstance(host_port, bool) or not isinstance(host_port, int) or not 0 < host_port < 65536):
            problems.append(f"ports: host port of {key!r} must be a port number or null")
    if "ingress_port" in config and not 0 <= config["ingress_port"] < 65536:
        problems.append("ingress_port: not a port number")
    if "timeout" in config and not 10 <= config["timeout"] <= 300:
        problems.append("timeout: must be 10 to 300 seconds")
    if "image" in config and "{arch}" not in config["image"]:
        problems.append("image: should contain {arch} for a multi-arch add-on")
    problems += check_options(config.get("options", {}), config.get("schema", {}))
    return problems


def check_options(options: dict[str, Any], schema: dict[str, Any] | bool) -> list[str]:
    """The schema's types are valid; every option has a schema entry; a default value fits its
    type; an option marked optional (`?`) has no default (a default would make it required)."""
    if schema is False:
        return []
    assert isinstance(schema, dict)
    problems: list[str] = []
    for key, element in schema.items():
        # A list of one type: `- str` under the key (the documented "list of" form).
        is_list = isinstance(element, list) and len(element) == 1 and isinstance(element[0], str)
        if is_list:
            element = element[0]
        elif not isinstance(element, str):
            problems.append(f"schema: {key!r}: nested schemas are not used here")
            continue
        match = SCHEMA_ELEMENT.match(element)
        if match is None:
            problems.append(f"schema: {key!r}: unknown type {element!r}")
            continue
        if match["optional"] and key in options:
            problems.append(f"schema: {key!r} is optional ('?') but options gives it a default")
        if not match["optional"] and key not in options:
            problems.append(f"options: {key!r} has no default, so the user must fill it in before the first start")
        if key in options and is_list:
            if not isinstance(options[key], list):
                problems.append(f"options: {key!r}: the schema is a list, the default is not")
            else:
                problems += [f"options: {key!r}: {problem}" for value in options[key] for problem in check_value(value, element)]
        elif key in options:
            problems += [f"options: {key!r}: {problem}" for problem in check_value(options[key], element)]
    problems += [f"options: {key!r} is not in the schema" for key in options if key not in schema]
    return problems


def check_value(value: Any, element: str) -> list[str]:
    match = SCHEMA_ELEMENT.match(element)
    assert match is not None
    kind = match["kind"] or element.split("(")[0].rstrip("?")
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{value!r} is not a boolean"]
    if kind in ("str", "password"):
        if not isinstance(value, str):
            return [f"{value!r} is not a string"]
        measure: float = len(value)
    elif kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
            return [f"{value!r} is not a {kind}"]
        measure = value
    elif kind == "list":
        return [] if str(value) in match["list"].split("|") else [f"{value!r} is not one of {match['list']}"]
    elif kind == "match":
        return [] if re.fullmatch(match["match"], str(value)) else [f"{value!r} does not match {match['match']}"]
    else:
        return []
    if match["min"] and measure < float(match["min"]):
        return [f"{value!r} is below the minimum {match['min']}"]
    if match["max"] and measure > float(match["max"]):
        return [f"{value!r} is above the maximum {match['max']}"]
    return []


def check_build(build: dict[str, Any], config: dict[str, Any]) -> list[str]:
    problems = [f"build.yaml: unknown key {key!r}" for key in build if key not in ("build_from", "args", "labels", "codenotary")]
    for arch, image in build.get("build_from", {}).items():
        if arch not in config["arch"]:
            problems.append(f"build_from: {arch!r} is not in config.yaml's arch")
        if not IMAGE_REF.match(str(image)):
            problems.append(f"build_from: {image!r} is not an image reference")
    problems += [f"build_from: no base image for {arch!r}" for arch in config["arch"] if arch not in build.get("build_from", {})]
    for section in ("args", "labels"):
        problems += [
            f"{section}: {key!r} must map a name to a string"
            for key, value in build.get(section, {}).items()
            if not isinstance(key, str) or not isinstance(value, str)
        ]
    return problems


def check_translations(translations: dict[str, Any], config: dict[str, Any]) -> list[str]:
    problems = [f"translations: unknown key {key!r}" for key in translations if key not in ("configuration", "network")]
    schema = config.get("schema") or {}
    for key, entry in translations.get("configuration", {}).items():
        if key not in schema:
            problems.append(f"translations: configuration {key!r} is not in the schema")
        elif not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("description"), str):
            problems.append(f"translations: configuration {key!r} needs a name and a description")
    ports = {key.lower() for key in config.get("ports", {})}
    problems += [f"translations: network {key!r} is not in ports" for key in translations.get("network", {}) if key.lower() not in ports]
    return problems


def check_repository(repository: dict[str, Any]) -> list[str]:
    problems = [] if isinstance(repository.get("name"), str) and repository["name"] else ["repository.yaml: 'name' is required"]
    problems += [f"repository.yaml: unknown key {key!r}" for key in repository if key not in ("name", "url", "maintainer")]
    return problems
