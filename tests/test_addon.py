"""The Home Assistant add-on: its files against the Supervisor's documented rules, its run
script against a stand-in for bashio (options in, the exact command line out, a bad option
named), and the run and discovery scripts with the real server on a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from wyoming_indextts.__main__ import build_parser, parse_args
from wyoming_indextts.service import chain_settings

from .addon_schema import check_build, check_config, check_repository, check_translations
from .test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "wyoming_indextts_addon"
SERVICES = ADDON / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"
RUN_SCRIPT = SERVICES / "wyoming-indextts" / "run"
DISCOVERY_SCRIPT = SERVICES / "discovery" / "run"
BASHIO = Path(__file__).with_name("bashio_standin") / "bashio"
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "NLS_APPKEY")
HA_TOKEN_VARIABLE = "WYOMING_INDEXTTS_HA_TOKEN"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


CONFIG = load(ADDON / "config.yaml")
INGRESS_PROXY = "172.30.32.2"
"""The Supervisor's ingress proxy (Home Assistant's developer docs, "Ingress")."""

def ingress_flags(root: Path) -> list[str]:
    return [
        "--http-uri", f"http://0.0.0.0:{CONFIG['ingress_port']}", "--http-token-file", f"{root}/data/http-token",
        "--http-trusted-peer", INGRESS_PROXY,
    ]  # fmt: skip


# --- the files, against the Supervisor's documented rules ------------------------------------


def test_config_yaml_follows_the_supervisors_rules():
    assert check_config(CONFIG) == []
    assert CONFIG["discovery"] == ["wyoming"]
    assert set(CONFIG["arch"]) == {"amd64", "aarch64"}
    assert CONFIG["init"] is False  # s6-overlay v3 in the base image is the init
    assert CONFIG["ports"] == {"10200/tcp": None, f"{CONFIG['ingress_port']}/tcp": None}  # the HTTP API: off unless mapped
    assert CONFIG["homeassistant_api"] is True and CONFIG["panel_admin"] is True
    assert re.fullmatch(r"20\d\d\.\d{1,2}\.\d+", CONFIG["homeassistant"])
    assert {"type": "share", "read_only": False} in CONFIG["map"]
    schema = CONFIG["schema"]
    assert schema["voice"] == "str"  # free text: clips are named by the user, not a fixed list
    assert {schema[key] for key in ("sambert_access_key_id", "sambert_access_key_secret", "sambert_appkey")} == {"password?"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda c: c.pop("arch"), "required key 'arch' is missing"),
        (lambda c: c.update(arch=["amd64", "riscv"]), "unknown architecture 'riscv'"),
        (lambda c: c.update(init="no"), "init: expected"),
        (lambda c: c.update(ports={"10200": 10200}), "is not 'PORT/tcp'"),
        (lambda c: c.update(map=[{"type": "shares"}]), "unknown type 'shares'"),
        (lambda c: c["schema"].update(voice="string"), "unknown type 'string'"),
        (lambda c: c["schema"].pop("deadline"), "'deadline' is not in the schema"),
        (lambda c: c["options"].update(deadline=0.1), "below the minimum"),
        (lambda c: c["options"].update(cache_disk_mb="512"), "is not a int"),
        (lambda c: c["options"].update(sambert_appkey=""), "optional ('?') but options gives it a default"),
        (lambda c: c.update(ingres=True), "unknown key 'ingres'"),
    ],
)
def test_the_schema_check_catches_what_the_supervisor_refuses(change, complaint):
    config = load(ADDON / "config.yaml")
    change(config)
    assert any(complaint in problem for problem in check_config(config)), check_config(config)


def test_build_translations_and_repository_follow_the_rules_and_agree_on_the_version():
    build = load(ADDON / "build.yaml")
    assert check_build(build, CONFIG) == []
    assert all("home-assistant" in image and "base-debian" in image for image in build["build_from"].values())
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]  # no tomllib on 3.10
    assert CONFIG["version"] == build["args"]["WYOMING_INDEXTTS_VERSION"] == version
    # The release archive GitHub makes for the tag, of the repository Home Assistant adds.
    repository = load(ROOT / "repository.yaml")["url"]
    assert build["args"]["WYOMING_INDEXTTS_SOURCE"] == f"{repository}/archive/refs/tags/v{version}.tar.gz"
    releasing = (ROOT / "docs" / "releasing.md").read_text()
    assert all(name in releasing for name in ("config.yaml", "build.yaml", "pyproject.toml", "CHANGELOG.md"))
    translations = load(ADDON / "translations" / "en.yaml")
    assert check_translations(translations, CONFIG) == []
    assert set(translations["configuration"]) == set(CONFIG["schema"]), "every option needs a name and a description"
    assert check_repository(load(ROOT / "repository.yaml")) == []
    assert f"## {version}" in (ADDON / "CHANGELOG.md").read_text()
    docs = (ADDON / "DOCS.md").read_text()
    assert all(f"`{option}`" in docs for option in CONFIG["schema"]), "DOCS.md leaves an option out"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_the_store_pictures_have_the_documented_sizes():
    assert png_size(ADDON / "icon.png") == (128, 128)  # square, 128x128
    assert png_size(ADDON / "logo.png") == (250, 100)  # the documented 250x100


def test_the_image_and_the_s6_services_are_wired():
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert dockerfile.startswith("ARG BUILD_FROM\nFROM ${BUILD_FROM}\n")
    assert "COPY rootfs /" in dockerfile
    assert re.search(r"HEALTHCHECK .*\n\s+CMD python3 -m wyoming_indextts\.healthcheck", dockerfile)
    build_args = set(re.findall(r"^ARG (\w+)$", dockerfile, re.MULTILINE)) - {"BUILD_FROM"}
    assert build_args == set(load(ADDON / "build.yaml")["args"])
    for service, kind in (("wyoming-indextts", "longrun"), ("discovery", "oneshot")):
        assert (SERVICES / service / "type").read_text().strip() == kind
        assert (SERVICES / "user" / "contents.d" / service).exists()
    assert (SERVICES / "discovery" / "up").read_text().strip() == "/etc/s6-overlay/s6-rc.d/discovery/run"
    assert (SERVICES / "discovery" / "dependencies.d" / "wyoming-indextts").exists()
    for script in (RUN_SCRIPT, DISCOVERY_SCRIPT, SERVICES / "wyoming-indextts" / "finish"):
        assert script.read_text().startswith("#!/command/with-contenv bashio\n")
        assert os.access(script, os.X_OK)
        subprocess.run(["bash", "-n", script], check=True)
    run_script = RUN_SCRIPT.read_text()
    read_by_name = set(re.findall(r"bashio::config(?:\.\w+)? '(\w+)'", run_script))
    assert read_by_name <= set(CONFIG["schema"]), "the run script reads an option the schema lacks"
    unused = [option for option in CONFIG["schema"] if not re.search(rf"\b{option}\b", run_script)]
    assert unused == [], "options the run script ignores"


# --- the run script, options in, command line out -------------------------------------------

STANDIN_SERVER = """#!{python}
import json, os, sys
if sys.argv[1:] == ["--help"]:
    print(os.environ.get("STANDIN_HELP", ""))
    sys.exit(0)
print(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ[k] for k in {variables!r} if k in os.environ}}}}))
"""


@pytest.fixture
def addon_root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


def write_options(root: Path, **overrides: Any) -> None:
    options = {**CONFIG["options"], **overrides}
    (root / "data" / "options.json").write_text(json.dumps({k: v for k, v in options.items() if v is not None}))


def standin_bin(root: Path) -> Path:
    """A `wyoming-indextts` that prints the command line and credentials it was started with."""
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    server = bin_dir / "wyoming-indextts"
    server.write_text(STANDIN_SERVER.format(python=sys.executable, variables=(*CREDENTIAL_VARIABLES, HA_TOKEN_VARIABLE)))
    server.chmod(0o755)
    return bin_dir


def run_addon(root: Path, bin_dir: Path, port: int = 10200, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "ADDON_ROOT": str(root),
        "ADDON_CONFIG": str(root / "data" / "options.json"),
        "WYOMING_INDEXTTS_PORT": str(port),
        **env,
    }
    return subprocess.run([BASHIO, RUN_SCRIPT], capture_output=True, text=True, timeout=60, env=environ)


def started_with(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_options_start_the_bundled_voice(addon_root):
    write_options(addon_root)
    started = started_with(run_addon(addon_root, standin_bin(addon_root)))
    assert started["argv"] == [
        "--uri", "tcp://0.0.0.0:10200", "--data-dir", f"{addon_root}/data",
        "--voice", "en_US-joe-medium", "--deadline", "2",
        "--cache-memory-mb", "64", "--cache-disk-mb", "512",
        *ingress_flags(addon_root),
    ]  # fmt: skip
    # The web page's token: made once, kept private in /data, read by the server from there.
    token_file = addon_root / "data" / "http-token"
    token = token_file.read_text()
    assert len(token) >= 32 and token.isalnum() and token not in started["argv"]
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert started["env"] == {}
    assert started_with(run_addon(addon_root, standin_bin(addon_root)))["argv"] == started["argv"]
    assert token_file.read_text() == token, "a restart made a new token"
    assert (addon_root / "share" / "wyoming-indextts" / "voices").is_dir()
    assert (addon_root / "share" / "wyoming-indextts" / "models").is_dir()
    args = parse_args(started["argv"], started["env"])  # the real parser accepts it
    assert args.voice == "en_US-joe-medium" and args.http_token == token


def documented_differences() -> set[str]:
    """The flags in DOCS.md's table of what the add-on sets differently from the server."""
    docs = (ADDON / "DOCS.md").read_text()
    section = docs.split("## How the add-on starts the server", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(--[a-z0-9-]+)", section, re.MULTILINE))


def test_the_add_ons_flags_are_the_servers_defaults_except_where_the_docs_say_why(addon_root):
    write_options(addon_root)  # the add-on's default options
    started = started_with(run_addon(addon_root, standin_bin(addon_root)))
    parser = build_parser()
    addon, server = parse_args(started["argv"], started["env"], parser), parse_args([], {})
    engines = dict.fromkeys(("indextts", "sambert", "kokoro", "piper"))
    differing = set()
    for action in parser._actions:
        # --http-token follows --http-token-file, which reads it.
        if not action.option_strings or action.dest in ("help", "version", "http_token"):
            continue
        if action.dest == "deadline":  # repeatable: compare what the chain makes of it
            ours, theirs = chain_settings(addon, engines), chain_settings(server, engines)
            same = (ours.default_deadline, dict(ours.deadlines)) == (theirs.default_deadline, dict(theirs.deadlines))
        else:
            same = getattr(addon, action.dest, None) == getattr(server, action.dest, None)
        if not same:
            differing.add(action.option_strings[0])
    # --ha-url: the server side of that is its own branch; the run script passes it when the
    # server has it, and the documentation covers it either way.
    assert differing | {"--ha-url"} == documented_differences()


def test_the_supervisors_token_reaches_the_server_in_its_environment(addon_root):
    write_options(addon_root)
    help_text = "  --ha-url URL  Home Assistant's API"
    started = started_with(run_addon(addon_root, standin_bin(addon_root), STANDIN_HELP=help_text, SUPERVISOR_TOKEN="sup3r"))
    assert started["argv"][-2:] == ["--ha-url", "http://supervisor/core"]
    assert started["env"] == {HA_TOKEN_VARIABLE: "sup3r"} and "sup3r" not in started["argv"]
    # A server without --ha-url (before issue 22) starts as before; no token: a warning, no flag.
    assert "--ha-url" not in started_with(run_addon(addon_root, standin_bin(addon_root), SUPERVISOR_TOKEN="sup3r"))["argv"]
    result = run_addon(addon_root, standin_bin(addon_root), STANDIN_HELP=help_text)
    assert "--ha-url" not in started_with(result)["argv"] and "No Supervisor token" in result.stderr


def test_every_option_reaches_its_flag_and_credentials_stay_off_the_command_line(addon_root):
    share = addon_root / "share" / "wyoming-indextts"
    (share / "voices").mkdir(parents=True)
    (share / "voices" / "grandma.wav").write_bytes(b"RIFF")
    (share / "models" / "indextts2").mkdir(parents=True)
    (share / "models" / "indextts2" / "manifest.json").write_text("{}")
    (share / "announcements.txt").write_text("grandma: Dinner is ready.\n")
    write_options(
        addon_root, voice="grandma", int8=True, deadline=7.5, deadline_per_engine=["indextts=8", "remote=4.5"],
        cache_memory_mb=0, cache_disk_mb=2048, prerender_file="announcements.txt", debug_logging=True,
        sambert_access_key_id="LTAI5tKeyId", sambert_access_key_secret="s3cret value", sambert_appkey="appkey1",
    )
    result = run_addon(addon_root, standin_bin(addon_root), STANDIN_HELP="  --prerender FILE  announcements to render ahead")
    started = started_with(result)
    assert started["argv"] == [
        "--uri", "tcp://0.0.0.0:10200", "--data-dir", f"{addon_root}/data",
        "--voice", "grandma", "--deadline", "7.5", "--deadline", "indextts=8", "--deadline", "remote=4.5",
        "--cache-memory-mb", "0", "--cache-disk-mb", "2048",
        "--indextts-model-dir", f"{share}/models/indextts2", "--voices-dir", f"{share}/voices", "--indextts-int8",
        "--prerender", f"{share}/announcements.txt",
        *ingress_flags(addon_root),
        "--debug",
    ]  # fmt: skip
    assert started["env"] == dict(zip(CREDENTIAL_VARIABLES, ("LTAI5tKeyId", "s3cret value", "appkey1")))
    assert "s3cret" not in result.stderr
    known = [arg for arg in started["argv"] if arg not in ("--prerender", f"{share}/announcements.txt")]
    args = parse_args(known, started["env"])  # every flag but the pre-render one (another branch adds it) is real
    assert args.indextts_int8 and args.deadline == [(None, 7.5), ("indextts", 8.0), ("remote", 4.5)]


@pytest.mark.parametrize(
    ("options", "files", "option", "complaint"),
    [
        ({"voice": ""}, [], "voice", "must name a voice"),
        ({"deadline": 0}, [], "deadline", "above 0, got '0'"),
        ({"deadline": -3}, [], "deadline", "above 0, got '-3'"),
        ({"cache_memory_mb": -1}, [], "cache_memory_mb", "whole number of MiB"),
        ({"cache_disk_mb": 1.5}, [], "cache_disk_mb", "got '1.5'"),
        ({"voice": "grandma"}, ["voices/grandma.wav"], "model", "the voice 'grandma' needs an exported model"),
        ({"int8": True}, [], "int8", "needs an exported model"),
        ({"prerender_file": "announcements.txt"}, [], "prerender_file", "no file"),
        ({"prerender_file": "announcements.txt"}, ["announcements.txt"], "prerender_file", "cannot pre-render"),
        ({"sambert_access_key_id": "LTAI5tKeyId"}, [], "sambert_access_key_secret", "needs all three"),
        ({"sambert_appkey": "appkey1", "sambert_access_key_secret": "x"}, [], "sambert_access_key_id", "needs all three"),
    ],
)
def test_a_bad_option_stops_the_add_on_with_its_name(addon_root, options, files, option, complaint):
    share = addon_root / "share" / "wyoming-indextts"
    for name in files:
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_bytes(b"x")
    write_options(addon_root, **options)
    result = run_addon(addon_root, standin_bin(addon_root))
    assert result.returncode == 1
    assert result.stdout == "", "the server was started anyway"
    fatal = [line for line in result.stderr.splitlines() if "FATAL:" in line]
    assert len(fatal) == 1 and f"FATAL: Option '{option}': " in fatal[0] and complaint in fatal[0], result.stderr


def test_clips_without_a_model_warn_and_the_bundled_voice_still_starts(addon_root):
    voices = addon_root / "share" / "wyoming-indextts" / "voices"
    voices.mkdir(parents=True)
    (voices / "grandma.wav").write_bytes(b"RIFF")
    write_options(addon_root)
    result = run_addon(addon_root, standin_bin(addon_root))
    assert "--voices-dir" not in started_with(result)["argv"]
    assert "WARNING: Option 'model': no exported model" in result.stderr


# --- with the real server --------------------------------------------------------------------


def real_bin(root: Path) -> Path:
    """`wyoming-indextts` and `python3` as in the image, running this checkout's code."""
    bin_dir = root / "real-bin"
    bin_dir.mkdir()
    (bin_dir / "wyoming-indextts").write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{sys.executable}" -m wyoming_indextts "$@"\n')
    # A wrapper, not a symlink: a symlinked venv python outside the venv loses its packages.
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


async def test_discovery_waits_for_describe_then_announces_the_running_server(addon_root):
    write_options(addon_root)
    bin_dir = real_bin(addon_root)
    port, http_port = free_port(), free_port()
    discovered = addon_root / "discovered"
    environ = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "ADDON_ROOT": str(addon_root),
        "ADDON_CONFIG": str(addon_root / "data" / "options.json"),
        "WYOMING_INDEXTTS_PORT": str(port),
        "WYOMING_INDEXTTS_HTTP_PORT": str(http_port),
        # The ingress proxy's place: 127.0.0.1 here; requests from 127.0.0.2 stand for the network.
        "WYOMING_INDEXTTS_INGRESS_PEER": "127.0.0.1",
        "BASHIO_STANDIN_DISCOVERY": str(discovered),
    }
    discovery = subprocess.Popen([BASHIO, DISCOVERY_SCRIPT], cwd=ROOT, env=environ, stderr=subprocess.PIPE, text=True)
    server = None
    try:
        await asyncio.sleep(3)
        assert discovery.poll() is None and not discovered.exists(), "discovery did not wait for the server"
        server = subprocess.Popen([BASHIO, RUN_SCRIPT], cwd=ROOT, env=environ, stderr=subprocess.PIPE, text=True)
        assert discovery.wait(timeout=120) == 0
        assert discovered.read_text() == f'wyoming {{"uri":"tcp://{socket.gethostname()}:{port}"}}\n'
        # The container's health check, against the same server.
        health = subprocess.run(
            [bin_dir / "python3", "-m", "wyoming_indextts.healthcheck", "--uri", f"tcp://127.0.0.1:{port}"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert health.returncode == 0 and health.stdout.startswith("healthy: "), health.stderr
        # The web page through ingress: the proxy needs no token, anyone else does.
        voices = f"http://127.0.0.1:{http_port}/v1/voices"
        assert httpx.get(voices, timeout=30).status_code == 200
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30) as network:
            assert network.get(voices).status_code == 401
            token = (addon_root / "data" / "http-token").read_text()
            bearer = {"Authorization": f"Bearer {token}"}
            assert network.get(voices, headers=bearer).status_code == 200
            # The token on the page behind ingress: shown once, replaced on request; the
            # network cannot see or replace it, token or not.
            admin = f"http://127.0.0.1:{http_port}/v1/admin/token"
            confirm = {"confirm": True}
            assert httpx.get(admin, timeout=30).json() == {"shown": False}
            assert network.post(f"{admin}/reveal", json=confirm, headers=bearer).status_code == 403
            assert httpx.post(f"{admin}/reveal", json=confirm, timeout=30).json() == {"token": token}
            assert httpx.post(f"{admin}/reveal", json=confirm, timeout=30).status_code == 409
            assert httpx.get(admin, timeout=30).json() == {"shown": True}
            assert httpx.post(f"{admin}/rotate", content="confirm=true", timeout=30).status_code == 422  # a form cannot
            assert network.post(f"{admin}/rotate", json=confirm, headers=bearer).status_code == 403
            rotated = httpx.post(f"{admin}/rotate", json=confirm, timeout=30).json()["token"]
            assert rotated != token and (addon_root / "data" / "http-token").read_text() == rotated
            assert network.get(voices, headers=bearer).status_code == 401, "the old token still works"
            assert network.get(voices, headers={"Authorization": f"Bearer {rotated}"}).status_code == 200
    finally:
        discovery.kill()
        if server is not None:
            server.terminate()  # the run script exec'd into the server: this is the server
            _, server_log = server.communicate(timeout=30)
    assert "Starting wyoming-indextts" in server_log
    assert f"Ready on tcp://0.0.0.0:{port}" in server_log and "Server stopped" in server_log
    assert (addon_root / "data" / "cache").is_dir(), "the cache is not in the add-on's /data"


# --- script/addon-check: the image built and started (it runs in .ci/run, not here) -----------


def test_addon_check_says_it_is_skipped_without_its_tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):  # the wrapper's own needs; no podman, mmdebstrap or runc
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        [ROOT / "script" / "addon-check"], capture_output=True, text=True, timeout=120,
        env={"PATH": str(bin_dir), "PYTHON": sys.executable},
    )  # fmt: skip
    assert result.returncode == 77, result.stderr
    assert result.stdout.startswith("addon-check: SKIPPED: podman, mmdebstrap, runc not installed"), result.stdout


def test_a_token_file_gives_the_token_and_a_bad_one_is_named(tmp_path):
    token_file = tmp_path / "http-token"
    token_file.write_text("s3cret\n")
    argv = ["--http-uri", "http://0.0.0.0:8099", "--http-token-file", str(token_file)]
    assert parse_args(argv, {}).http_token == "s3cret"
    assert parse_args(argv, {"WYOMING_INDEXTTS_HTTP_TOKEN": "other"}).http_token == "s3cret"
    with pytest.raises(SystemExit):
        parse_args([*argv, "--http-token", "other"], {})
    token_file.write_text("")
    result = subprocess.run([sys.executable, "-m", "wyoming_indextts", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"--http-token-file: '{token_file}' is empty" in result.stderr
