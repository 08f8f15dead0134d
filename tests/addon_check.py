"""Build the Home Assistant add-on's image as the Supervisor would and start it: `script/addon-check`.

Home Assistant's base images cannot be pulled here, so the base is made from Debian's packages:
mmdebstrap writes a bookworm root file system with what the base-debian images carry that the
add-on uses (bash, jq, curl, CA certificates, time zones) plus stand-ins for the two things that
are not Debian packages: bashio (tests/bashio_standin) and s6-overlay's /init and with-contenv
(tests/addon_base). `podman import` makes it the BUILD_FROM image. The add-on's Dockerfile is
built unchanged on it with the add-on folder as the context (as the Supervisor does) and the
release taken from an sdist of this checkout, served on loopback under the URL passed as
WYOMING_INDEXTTS_SOURCE, the build argument that carries the release archive's URL in build.yaml.

The image then runs with its own entry point, the add-on's default options in /data/options.json,
on a network where this machine has the ingress proxy's address (172.30.32.2), and these are
checked over that network: a Wyoming describe, a sentence in the default voice (real client,
real audio), the web page, its script and the voice list through the ingress proxy's address
with no token, the token still needed from anywhere else, the discovery message, and the
image's own HEALTHCHECK command.

Exit codes: 0 every check passed, 1 one failed (the container's log is printed), 77 skipped
because podman, mmdebstrap or runc is missing or this is not root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import LoadMonitor, machine_description, timestamp, write_section  # noqa: E402 (after the path)

ADDON = ROOT / "wyoming_indextts_addon"
BASHIO_STANDIN = ROOT / "tests" / "bashio_standin"
S6_STANDIN = ROOT / "tests" / "addon_base"
SUITE = "bookworm"
BASE_PACKAGES = ("bash", "jq", "curl", "ca-certificates", "tzdata")
"""Home Assistant's base-debian images carry these (besides bashio and s6-overlay)."""
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
"""This machine's extra certificate authorities (a TLS-intercepting proxy in front of PyPI):
the base gets them, and pip in the image is told to use the system's store, so the build's
pip reaches PyPI the way this machine's does. An empty folder or none: nothing added."""
BASE_CHANGES = (
    'ENTRYPOINT ["/init"]',
    "ENV LANG=C.UTF-8",
    # The bashio stand-in records discovery messages here instead of posting them to the Supervisor.
    "ENV BASHIO_STANDIN_DISCOVERY=/run/bashio-discovery",
)
NETWORK = "addon-check-hassio"
NETWORK_SUBNET = "172.30.32.0/23"
INGRESS_PROXY = "172.30.32.2"
"""The Supervisor's ingress proxy on Home Assistant's network; here it is this machine."""
CONTAINER = "addon-check-wyoming-indextts"
HOSTNAME = "local-wyoming-indextts"
"""The Supervisor's host name for a local add-on: its slug with '-' for '_', prefixed 'local-'."""
IMAGE = "localhost/wyoming-indextts-addon:check"
WYOMING_PORT = 10200
SENTENCE = "The add-on is built and speaking."
RESULTS_SECTION = "addon_check"
CA_NOTE = " (through this machine's TLS-intercepting proxy: its CA certificates were added to the base)"
SOURCE_PORT = 18990
"""Where the sdist is served when the port is free: the build argument then stays the same
from run to run, and podman reuses the installed layer while the sdist's contents do."""


class CheckFailed(Exception):
    pass


class Skipped(Exception):
    pass


class Steps:
    """Each step's name and seconds, printed as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"addon-check: {name} ...", flush=True)
        start = time.monotonic()
        yield
        self.seconds[name] = time.monotonic() - start
        print(f"addon-check: {name}: ok ({self.seconds[name]:.1f} s)", flush=True)


class Podman:
    """podman with its own storage and network configuration under the work folder, so the
    check neither sees nor touches other images and networks on the machine."""

    def __init__(self, work: Path) -> None:
        self.base = [
            "podman", "--root", str(work / "storage"), "--runroot", str(work / "runroot"),
            "--network-config-dir", str(work / "networks"),
            # cgroupfs and runc: crun refuses the hybrid cgroup hierarchy of machines like this one.
            "--cgroup-manager", "cgroupfs", "--runtime", "runc",
        ]  # fmt: skip
        (work / "networks").mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise CheckFailed(f"podman {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        return result

    def stream(self, *args: str) -> None:
        """A long command whose output the user should see as it comes (the image build)."""
        if subprocess.run([*self.base, *args], check=False).returncode != 0:
            raise CheckFailed(f"podman {' '.join(args[:2])} failed")


def require_tools() -> None:
    missing = [tool for tool in ("podman", "mmdebstrap", "runc") if shutil.which(tool) is None]
    if missing:
        raise Skipped(f"{', '.join(missing)} not installed (Debian: apt-get install podman mmdebstrap runc)")
    if os.geteuid() != 0:
        raise Skipped("needs root (mmdebstrap and podman build the image as root)")


def base_image(podman: Podman, work: Path, fresh: bool) -> str:
    """The BUILD_FROM image, rebuilt only when its recipe (packages, stand-ins) changed."""
    recipe = hashlib.sha256(repr((SUITE, BASE_PACKAGES, BASE_CHANGES)).encode())
    local_cas = sorted(LOCAL_CAS.glob("*.crt"))
    for standin in sorted([*BASHIO_STANDIN.iterdir(), *S6_STANDIN.iterdir()]) + local_cas:
        recipe.update(standin.name.encode() + standin.read_bytes())
    tag = f"localhost/addon-check-base:{SUITE}-{recipe.hexdigest()[:12]}"
    if not fresh and podman("image", "exists", tag, check=False).returncode == 0:
        print(f"addon-check: base image {tag} is already built (--fresh rebuilds it)")
        return tag
    # A new base makes every earlier image and cached layer useless: drop them, or the work
    # folder grows by a gigabyte with each change to the recipe.
    for old in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/addon-check-base").stdout.split():
        podman("rmi", "--force", old, check=False)
    podman("rmi", "--force", IMAGE, check=False)
    podman("image", "prune", "--force", check=False)
    tarball = work / "base.tar"
    hooks = [
        'mkdir -p "$1/usr/lib/bashio" "$1/command"',
        f"copy-in {BASHIO_STANDIN / 'bashio'} {BASHIO_STANDIN / 'bashio.sh'} /usr/lib/bashio",
        'ln -s /usr/lib/bashio/bashio "$1/usr/bin/bashio"',
        f"copy-in {S6_STANDIN / 'init'} /",
        f"copy-in {S6_STANDIN / 'with-contenv'} /command",
    ]
    if local_cas:
        hooks += [
            f"copy-in {' '.join(map(str, local_cas))} {LOCAL_CAS}",
            'chroot "$1" update-ca-certificates',
            "printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > \"$1/etc/pip.conf\"",
        ]
    command = ["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
    command += [f"--customize-hook={hook}" for hook in hooks]
    if subprocess.run([*command, SUITE, str(tarball)], check=False).returncode != 0:
        raise CheckFailed("mmdebstrap could not make the base root file system")
    changes = [argument for change in BASE_CHANGES for argument in ("--change", change)]
    podman("import", *changes, str(tarball), tag)
    tarball.unlink()
    return tag


def build_sdist(work: Path) -> Path:
    """What `python -m build --sdist --no-isolation` makes, without needing `build` installed."""
    dist = work / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir()
    code = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckFailed(f"sdist: {result.stderr.strip()[-2000:]}")
    sdist = dist / result.stdout.strip().splitlines()[-1]
    with subprocess.Popen(["tar", "tzf", str(sdist)], stdout=subprocess.PIPE, text=True) as listing:
        names = listing.communicate()[0]
    if "/wyoming_indextts/http/page/index.html" not in names:
        raise CheckFailed(f"{sdist.name} lacks the web page (wyoming_indextts/http/page): see pyproject.toml's package-data")
    return sdist


def content_digest(sdist: Path) -> str:
    """The names and contents of what the sdist installs (its gzip and tar headers carry the
    time it was made; its tests/ are not installed)."""
    digest = hashlib.sha256()
    with tarfile.open(sdist) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if "/tests/" in member.name:
                continue
            digest.update(member.name.encode())
            if member.isfile():
                digest.update(archive.extractfile(member).read())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def served(sdist: Path) -> Iterator[str]:
    """The sdist over HTTP on loopback, as a release archive is on GitHub; yields its URL, which
    names its contents, so a changed checkout never reuses an image layer built from another."""
    folder = sdist.parent / content_digest(sdist)
    folder.mkdir(exist_ok=True)
    shutil.copy2(sdist, folder / sdist.name)
    handler = functools.partial(QuietHandler, directory=str(sdist.parent))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", SOURCE_PORT), handler)
    except OSError:  # taken: any port, and the layer is rebuilt
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{folder.name}/{sdist.name}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def project_version() -> str:
    return re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]


def build_image(podman: Podman, base: str, addon_dir: Path, source_url: str, fresh: bool) -> None:
    podman.stream(
        "build", "--isolation", "chroot",
        # Docker's format keeps the HEALTHCHECK (OCI images have no such field); the Supervisor uses Docker.
        "--format", "docker",
        *(["--no-cache"] if fresh else []),
        "--build-arg", f"BUILD_FROM={base}",
        "--build-arg", f"WYOMING_INDEXTTS_VERSION={project_version()}",
        "--build-arg", f"WYOMING_INDEXTTS_SOURCE={source_url}",
        "--tag", IMAGE, str(addon_dir),
    )  # fmt: skip


def image_megabytes(podman: Podman, image: str) -> float:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()) / 1e6


def start_addon(podman: Podman, work: Path, addon_dir: Path) -> str:
    """The container as the Supervisor starts it: /data with options.json, /share, the
    Supervisor's token in the environment; returns its address on the network."""
    podman("rm", "--force", CONTAINER, check=False)
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", "--subnet", NETWORK_SUBNET, "--gateway", INGRESS_PROXY, NETWORK)
    data, share = work / "data", work / "share"
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(share, ignore_errors=True)
    data.mkdir()
    share.mkdir()
    options = yaml.safe_load((addon_dir / "config.yaml").read_text())["options"]
    (data / "options.json").write_text(json.dumps(options))
    # podman's default limits for root exceed this machine's hard limits, which runc may not raise.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    podman(
        "run", "--detach", "--name", CONTAINER, "--hostname", HOSTNAME, "--network", NETWORK,
        "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096",
        "--volume", f"{data}:/data", "--volume", f"{share}:/share",
        "--env", "SUPERVISOR_TOKEN=addon-check-supervisor-token",
        IMAGE,
    )  # fmt: skip
    template = f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}'
    return podman("inspect", "--format", template, CONTAINER).stdout.strip()


def wait_healthy(podman: Podman, timeout: float) -> None:
    """The image's own HEALTHCHECK command passes (a Wyoming describe inside the container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = podman("inspect", "--format", "{{.State.Running}}", CONTAINER).stdout.strip()
        if running != "true":
            code = podman("inspect", "--format", "{{.State.ExitCode}}", CONTAINER).stdout.strip()
            raise CheckFailed(f"the add-on stopped before it answered (exit code {code})")
        if podman("healthcheck", "run", CONTAINER, check=False, timeout=60).returncode == 0:
            return
        time.sleep(2)
    raise CheckFailed(f"the add-on did not answer its health check within {timeout:g} s")


async def check_wyoming(address: str, voice: str) -> tuple[int, float]:
    """Describe lists the default voice; a sentence in it comes back as audio that is not
    silence. Returns the voice count and the audio's seconds."""
    async with AsyncClient.from_uri(f"tcp://{address}:{WYOMING_PORT}") as client:
        await client.write_event(Describe().event())
        while not Info.is_type((event := await client.read_event()).type):
            pass
        voices = [v.name for program in Info.from_event(event).tts for v in program.voices]
        if voice not in voices:
            raise CheckFailed(f"describe does not list the default voice {voice!r}: {voices}")
        await client.write_event(Synthesize(text=SENTENCE, voice=SynthesizeVoice(name=voice)).event())
        audio, start = bytearray(), None
        while True:
            event = await client.read_event()
            if event is None:
                raise CheckFailed("the server closed the connection in the middle of the sentence")
            if AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
            elif AudioChunk.is_type(event.type):
                audio += AudioChunk.from_event(event).audio
            elif AudioStop.is_type(event.type):
                break
            elif event.type == "error":
                raise CheckFailed(f"the server answered the sentence with an error: {event.data}")
    if start is None or start.width != 2:
        raise CheckFailed(f"no 16-bit audio-start before the audio: {start}")
    seconds = len(audio) / (start.rate * start.width * start.channels)
    samples = memoryview(bytes(audio)).cast("h")
    loudest = max(map(abs, samples), default=0)
    if seconds < 1.0 or loudest < 1000:
        raise CheckFailed(f"the sentence came back as {seconds:.2f} s of audio with peak {loudest}: not speech")
    return len(voices), seconds


def check_ingress(podman: Podman, address: str, port: int, voice: str) -> None:
    """From the ingress proxy's address the page and the API need no token (the Supervisor
    signed the user in); from anywhere else they do."""
    base = f"http://{address}:{port}/"
    headers = {"X-Ingress-Path": "/api/hassio_ingress/addon-check"}  # what the proxy adds
    with httpx.Client(base_url=base, headers=headers, timeout=30) as proxy:
        page = proxy.get("")
        if page.status_code != 200 or "text/html" not in page.headers["content-type"]:
            raise CheckFailed(f"GET / through ingress: {page.status_code} {page.text[:300]}")
        for link in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            if link.startswith(("/", "http:", "https:")):
                raise CheckFailed(f"the page links {link!r}, which escapes the ingress prefix")
            if proxy.get(link).status_code != 200:
                raise CheckFailed(f"the page's {link} is missing from the image")
        listed = proxy.get("v1/voices")
        if listed.status_code != 200 or listed.json()["default"] != voice:
            raise CheckFailed(f"GET v1/voices through ingress: {listed.status_code} {listed.text[:300]}")
    # From inside the container (127.0.0.1), not the proxy: the token is needed.
    status = podman(
        "exec", CONTAINER, "curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}",
        f"http://127.0.0.1:{port}/v1/voices",
    ).stdout.strip()  # fmt: skip
    if status != "401":
        raise CheckFailed(f"GET v1/voices from another address without the token answered {status}, not 401")


def check_discovery(podman: Podman) -> None:
    """Home Assistant is told where the server is once it answers (the discovery service)."""
    expected = f'wyoming {{"uri":"tcp://{HOSTNAME}:{WYOMING_PORT}"}}'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = podman("exec", CONTAINER, "cat", "/run/bashio-discovery", check=False).stdout.strip()
        if found:
            if found != expected:
                raise CheckFailed(f"discovery sent {found!r}, expected {expected!r}")
            return
        time.sleep(1)
    raise CheckFailed("no discovery message within 60 s of the server answering")


def stop_addon(podman: Podman) -> str:
    podman("stop", "--time", "30", CONTAINER, timeout=120)
    return podman("logs", CONTAINER).stderr + podman("logs", CONTAINER).stdout


def record(steps: Steps, image_mb: float, base_mb: float, monitor: LoadMonitor, speech: tuple[int, float]) -> None:
    rows = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in steps.seconds.items())
    write_section(
        RESULTS_SECTION,
        f"""## The add-on's image: built with podman, started, heard (script/addon-check)

Run {timestamp()}, `script/addon-check --fresh --record`. Machine: {machine_description()}.
{monitor.summary()}.

Base: Debian {SUITE} from mmdebstrap (`{' '.join(BASE_PACKAGES)}`) with the bashio and s6-overlay
stand-ins, imported as BUILD_FROM; the add-on's Dockerfile built on it unchanged (`podman build
--isolation chroot --format docker --no-cache`), the release an sdist of the checkout served on
loopback; pip fetched the dependencies from PyPI{CA_NOTE if sorted(LOCAL_CAS.glob("*.crt")) else ""}. Then started with its own entry point
(`podman run`, runc) and checked: describe, a sentence in the bundled voice
({speech[1]:.2f} s of audio; {speech[0]} voices listed), the page through the ingress proxy's
address, the token needed elsewhere, discovery, the HEALTHCHECK command.

| step | seconds |
|---|---|
{rows}

Image size (podman's count, uncompressed): **{image_mb:.0f} MB**, of which the base is {base_mb:.0f} MB.
""",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/addon-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/wyoming-indextts-addon-check"), help="podman storage, base image and the add-on's /data and /share (default: %(default)s)")
    parser.add_argument("--addon-dir", type=Path, default=ADDON, help="the add-on folder to build (default: this checkout's)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the base and every layer (for timing)")
    parser.add_argument("--record", action="store_true", help="write the timings and image size to benchmarks/RESULTS.md")
    parser.add_argument("--start-timeout", type=float, default=600, help="seconds the add-on may take to answer (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave the container running afterwards")
    args = parser.parse_args(argv)
    try:
        require_tools()
    except Skipped as why:
        print(f"addon-check: SKIPPED: {why}", flush=True)
        return 77
    args.work.mkdir(parents=True, exist_ok=True)
    podman, steps = Podman(args.work), Steps()
    voice = yaml.safe_load((args.addon_dir / "config.yaml").read_text())["options"]["voice"]
    http_port = yaml.safe_load((args.addon_dir / "config.yaml").read_text())["ingress_port"]
    started = False
    try:
        with LoadMonitor() as monitor:
            with steps.step("base image (mmdebstrap, podman import)"):
                base = base_image(podman, args.work, args.fresh)
            with steps.step("sdist of this checkout"):
                sdist = build_sdist(args.work)
            with served(sdist) as source_url, steps.step("image build (podman build, pip from PyPI)"):
                build_image(podman, base, args.addon_dir, source_url, args.fresh)
            image_mb, base_mb = image_megabytes(podman, IMAGE), image_megabytes(podman, base)
            print(f"addon-check: image {IMAGE}: {image_mb:.0f} MB (base {base_mb:.0f} MB)")
            with steps.step("start until the HEALTHCHECK command passes"):
                started = True
                address = start_addon(podman, args.work, args.addon_dir)
                wait_healthy(podman, args.start_timeout)
            with steps.step("Wyoming describe and a sentence in the default voice"):
                speech = asyncio.run(check_wyoming(address, voice))
                print(f"addon-check: {speech[1]:.2f} s of audio in {voice}; {speech[0]} voices listed")
            with steps.step("page, script and voices through the ingress proxy; token elsewhere"):
                check_ingress(podman, address, http_port, voice)
            with steps.step("discovery message"):
                check_discovery(podman)
        if args.record:
            record(steps, image_mb, base_mb, monitor, speech)
        if not args.keep:
            log = stop_addon(podman)
            if "Server stopped" not in log:
                raise CheckFailed("the server did not stop cleanly on podman stop")
        print(f"addon-check: PASSED in {sum(steps.seconds.values()):.0f} s; image {image_mb:.0f} MB")
        return 0
    except (CheckFailed, subprocess.TimeoutExpired, OSError, httpx.HTTPError) as err:
        print(f"addon-check: FAILED: {err}", flush=True)
        if started:
            logs = podman("logs", CONTAINER, check=False)
            print("--- the add-on's log (last 60 lines) ---")
            print("\n".join((logs.stdout + logs.stderr).splitlines()[-60:]))
        return 1
    finally:
        if started and not args.keep:
            podman("rm", "--force", CONTAINER, check=False)


if __name__ == "__main__":
    sys.exit(main())
