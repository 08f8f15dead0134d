"""CreateToken through aliyun-python-sdk-core: one token shared by the worker threads, renewed
ahead of its ExpireTime and after the gateway rejects it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from ..base import EngineError
from .redaction import REDACTOR, mask_key_id
from .settings import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, TOKEN_API_VERSION, SambertSettings

try:  # the optional extra "sambert"; checked when an engine is built
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest
except ImportError:
    AcsClient = None

_LOGGER = logging.getLogger(__name__)

class TokenCache:
    """One NLS token shared by all worker threads, renewed ahead of its ExpireTime."""

    def __init__(self, settings: SambertSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._client: AcsClient | None = None  # built on first use

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after the gateway rejected it; a newer token is kept."""
        with self._lock:
            if self._token == token:
                self._token = None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.session.close()
                self._client = None

    def _fetch(self) -> None:
        s = self._settings
        if self._client is None:
            port = s.token_port or (443 if s.token_protocol == "https" else 80)
            # auto_retry off: the SDK does not retry CreateToken anyway; saying so pins the
            # worst case at one timeout, after which the chain falls back to another engine.
            self._client = AcsClient(
                s.access_key_id, s.access_key_secret, s.region, auto_retry=False, port=port,
                connect_timeout=s.connect_timeout, timeout=s.read_timeout,
            )
        request = CommonRequest()
        request.set_method("POST")
        request.set_domain(s.token_domain)
        request.set_protocol_type(s.token_protocol)
        request.set_version(TOKEN_API_VERSION)
        request.set_action_name("CreateToken")
        started = self._clock()
        try:
            body = self._client.do_action_with_exception(request)
        except ServerException as exc:
            raise EngineError(self._describe_server_error(exc)) from None
        except ClientException as exc:
            raise EngineError(REDACTOR.redact(
                f"could not get an NLS token from {s.token_protocol}://{s.token_domain}: "
                f"{exc.get_error_msg()} — check the network, DNS and proxy settings "
                f"(the request times out after {s.connect_timeout:g} s connect / "
                f"{s.read_timeout:g} s read)"
            )) from None
        try:
            answer = json.loads(body)
            token = answer["Token"]["Id"]
            expire_time = float(answer["Token"]["ExpireTime"])
            if not isinstance(token, str) or not token:
                raise ValueError("empty token")
        except (ValueError, KeyError, TypeError):
            raise EngineError(
                f"the NLS token service at {s.token_domain} answered CreateToken with something "
                "that is not a token (no Token.Id/ExpireTime); check NLS_TOKEN_DOMAIN points "
                "at the NLS meta service"
            ) from None
        REDACTOR.add_token(token)
        # Renew `margin` seconds early, but never later than half-way through the lifetime, so a
        # short-lived token is not renewed on every request yet never used past its end.
        wall_now = time.time()
        lifetime = expire_time - wall_now
        if lifetime <= 0:
            _LOGGER.warning(
                "NLS token arrived already expired (ExpireTime %.0f, local time %.0f): the "
                "local clock is probably wrong; using it for one minute", expire_time, wall_now)
            lifetime = 60.0
        margin = min(s.token_refresh_margin, lifetime / 2)
        self._token = token
        self._refresh_at = started + lifetime - margin
        _LOGGER.debug("got an NLS token valid for %.0f s; renewing in %.0f s",
                      lifetime, lifetime - margin)

    def _describe_server_error(self, exc: ServerException) -> str:
        s = self._settings
        code = exc.get_error_code() or ""
        key = mask_key_id(s.access_key_id)
        if code in ("InvalidAccessKeySecret", "SignatureDoesNotMatch"):
            return (f"Alibaba Cloud rejected the AccessKey secret for AccessKey ID {key} "
                    f"({code}): check {ENV_ACCESS_KEY_SECRET} (copy it again from the RAM "
                    "console; it is shown only when the key is created)")
        if code == "InvalidAccessKeyId.NotFound":
            return (f"Alibaba Cloud does not know AccessKey ID {key} ({code}): check "
                    f"{ENV_ACCESS_KEY_ID}; the key may have been deleted")
        if code == "InvalidAccessKeyId.Inactive":
            return (f"AccessKey ID {key} is disabled ({code}): enable it in the RAM console "
                    "or create a new one")
        if code.startswith("Throttling"):
            return ("the NLS token service is throttling this account (user flow control, "
                    f"{code}): too many CreateToken calls; wait a minute and try again")
        if code.startswith("Forbidden") or "NoPermission" in code:
            return (f"AccessKey ID {key} may not create NLS tokens ({code}): grant the RAM "
                    "user the AliyunNLSFullAccess policy")
        if code in ("InvalidTimeStamp.Expired", "InvalidTimeStamp.Format"):
            return (f"the token service rejected the request time ({code}): the local clock "
                    "is off; enable NTP")
        return REDACTOR.redact(
            f"the NLS token service refused CreateToken: {code} (HTTP {exc.get_http_status()}): "
            f"{exc.get_error_msg()}; request id {exc.get_request_id()}"
        )
