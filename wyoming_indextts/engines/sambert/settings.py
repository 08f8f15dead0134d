"""Sambert's settings: endpoints, limits and credentials, from the environment or a file."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REGION = "cn-shanghai"
DEFAULT_TOKEN_DOMAIN = "nls-meta.cn-shanghai.aliyuncs.com"
DEFAULT_GATEWAY_URL = "https://nls-gateway-cn-shanghai.aliyuncs.com/stream/v1/tts"
TOKEN_API_VERSION = "2019-02-28"

MAX_TEXT_CHARS = 300
"""The gateway silently truncates text beyond this many characters, so we split first."""

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_APPKEY = "NLS_APPKEY"
ENV_GATEWAY_URL = "NLS_GATEWAY_URL"
ENV_TOKEN_DOMAIN = "NLS_TOKEN_DOMAIN"
ENV_REGION = "NLS_REGION"

STATUS_OK = 20000000
STATUS_TOKEN_INVALID = 40000001


@dataclass(frozen=True)
class SambertSettings:
    """Everything the engine needs; secrets are kept out of `repr`."""

    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    appkey: str
    region: str = DEFAULT_REGION
    token_domain: str = DEFAULT_TOKEN_DOMAIN
    token_port: int | None = None
    """None: the protocol's default port. Set (with protocol "http") for a stand-in server."""
    token_protocol: str = "https"
    gateway_url: str = DEFAULT_GATEWAY_URL
    sample_rate: int = 16000
    volume: int = 50
    speech_rate: int = 0
    pitch_rate: int = 0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    """Longest silence allowed on a socket (token service and gateway) before giving up."""
    token_refresh_margin: float = 600.0
    """Renew the token this many seconds before its ExpireTime (at most half its lifetime)."""
    server_retries: int = 2
    """How often a piece is retried after a 5xxxxxxx status (server-side errors)."""
    retry_backoff: float = 0.5
    """Delay before the first retry; doubles with each further one."""
    max_text_chars: int = MAX_TEXT_CHARS

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate not in (8000, 16000):
            problems.append(f"sample_rate must be 8000 or 16000, not {self.sample_rate}")
        if not 0 <= self.volume <= 100:
            problems.append(f"volume must be within 0..100, not {self.volume}")
        if not -500 <= self.speech_rate <= 500:
            problems.append(f"speech_rate must be within -500..500, not {self.speech_rate}")
        if not -500 <= self.pitch_rate <= 500:
            problems.append(f"pitch_rate must be within -500..500, not {self.pitch_rate}")
        if self.token_protocol not in ("http", "https"):
            problems.append(f"token_protocol must be http or https, not {self.token_protocol!r}")
        if urllib.parse.urlsplit(self.gateway_url).scheme not in ("http", "https"):
            problems.append(f"gateway_url must be an http(s) URL, not {self.gateway_url!r}")
        if not 1 <= self.max_text_chars <= MAX_TEXT_CHARS:
            problems.append(f"max_text_chars must be within 1..{MAX_TEXT_CHARS}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be positive")
        if self.server_retries < 0 or self.retry_backoff < 0:
            problems.append("server_retries and retry_backoff must not be negative")
        if problems:
            raise ValueError("invalid Sambert settings: " + "; ".join(problems))

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], credentials_file: Path | None = None
    ) -> SambertSettings | None:
        """Settings from environment variables and/or a credentials file; None if neither has any.

        Keys (in the environment or the file): `ALIBABA_CLOUD_ACCESS_KEY_ID`,
        `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, `NLS_APPKEY`, and optionally `NLS_REGION`,
        `NLS_TOKEN_DOMAIN`, `NLS_GATEWAY_URL`.

        The file is either a JSON object with those keys (recognised by a leading `{`) or
        KEY=VALUE lines (blank lines and `#` comments ignored, an optional `export ` prefix and
        surrounding quotes stripped), so a Docker env-file or a small secrets JSON both work.
        Environment variables win over the file; the file supplies what the environment lacks.

        Raises ValueError when the configuration is partial (say, an AccessKey without an
        appkey) or the file cannot be read: a half-configured cloud engine is a mistake worth
        reporting, not a reason to silently run without it. Messages name keys, never values.
        """
        values: dict[str, str] = {}
        if credentials_file is not None:
            values.update(read_credentials_file(credentials_file))
        for key in (ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY, ENV_REGION,
                    ENV_TOKEN_DOMAIN, ENV_GATEWAY_URL):
            if env.get(key, "").strip():
                values[key] = env[key].strip()

        required = (ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY)
        present = [key for key in required if values.get(key)]
        if not present:
            return None
        missing = [key for key in required if not values.get(key)]
        if missing:
            source = f" (environment or {credentials_file})" if credentials_file else ""
            raise ValueError(
                f"Sambert is half configured: {', '.join(missing)} missing{source}; "
                f"set all of {', '.join(required)} or none of them"
            )
        optional: dict[str, str] = {}
        if values.get(ENV_REGION):
            optional["region"] = values[ENV_REGION]
        if values.get(ENV_TOKEN_DOMAIN):
            optional["token_domain"] = values[ENV_TOKEN_DOMAIN]
        if values.get(ENV_GATEWAY_URL):
            optional["gateway_url"] = values[ENV_GATEWAY_URL]
        return cls(
            access_key_id=values[ENV_ACCESS_KEY_ID],
            access_key_secret=values[ENV_ACCESS_KEY_SECRET],
            appkey=values[ENV_APPKEY],
            **optional,
        )


def read_credentials_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read Sambert credentials file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # Only the position: the text itself holds secrets.
            raise ValueError(
                f"Sambert credentials file {path} is not valid JSON (line {exc.lineno}, "
                f"column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"Sambert credentials file {path} must hold a JSON object")
        return {str(k): str(v).strip() for k, v in data.items() if v is not None}
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Sambert credentials file {path}, line {number}: expected KEY=VALUE"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
