"""Secrets out of logs: AccessKey secrets, key ids and tokens never reach a log line or a
message built from a service answer; the SDK's own loggers get the same filter."""

from __future__ import annotations

import logging
import re
import threading
from collections import deque


def mask_key_id(key_id: str) -> str:
    """An AccessKey ID shortened so a person can tell keys apart without it being copied."""
    if len(key_id) <= 8:
        return "****"
    return f"{key_id[:4]}…{key_id[-4:]}"


class _Redactor(logging.Filter):
    """Replaces known secrets in log records and in messages we build.

    Holds the AccessKey secrets and the most recent tokens of every engine in this process. The
    SDK logs the CreateToken response body at DEBUG before we have even seen the token, so the
    `"Id": "..."` field of such a body is scrubbed by pattern as well.
    """

    _RECENT_TOKENS = 64
    _TOKEN_FIELD = re.compile(r'("Id"\s*:\s*")[^"\\]*')

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._fixed: dict[str, str] = {}
        self._tokens: deque[str] = deque(maxlen=self._RECENT_TOKENS)

    def add_secret(self, value: str, replacement: str) -> None:
        if value:
            with self._lock:
                self._fixed[value] = replacement

    def add_token(self, token: str) -> None:
        if token:
            with self._lock:
                self._tokens.append(token)

    def redact(self, text: str) -> str:
        with self._lock:
            pairs = list(self._fixed.items()) + [(t, "<token>") for t in self._tokens]
        # Longest first, so a secret that contains another is replaced whole.
        for value, replacement in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
            if value in text:
                text = text.replace(value, replacement)
        return self._TOKEN_FIELD.sub(r"\1<token>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's problem, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACTOR = _Redactor()

# Loggers of aliyun-python-sdk-core that may print request URLs or response bodies.
_SDK_LOGGERS = (
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.http_response",
    "aliyunsdkcore.retry.retry_condition",
    "aliyunsdkcore.vendored.requests.packages.urllib3.connectionpool",
)


def install_sdk_log_filter() -> None:
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
