"""Alibaba Cloud Intelligent Speech Interaction (NLS) short-text synthesis, the "sambert" engine.

Two services are involved (as Alibaba Cloud documents them; tests/nls_standin.py speaks both):

* CreateToken (POP API, `nls-meta.cn-shanghai.aliyuncs.com`) turns an AccessKey into a token.
  It goes through aliyun-python-sdk-core's `CommonRequest`, which does the HMAC-SHA1 signing.
  The token is cached until shortly before its ExpireTime and renewed once more whenever the
  gateway says 40000001 (token invalid).
* The RESTful gateway (`/stream/v1/tts`) speaks one piece of at most 300 characters per
  request and streams the audio back. We use **POST with a JSON body** rather than GET: the
  text needs no URL encoding, there is no URL length limit, and the token travels in the
  body instead of a URL that proxies and access logs like to record. http.client (stdlib) is
  used so the body can be read as it arrives: PCM is yielded chunk by chunk.

Credentials (AccessKey secret, tokens) never reach a log line or an exception message: the
SDK's own loggers get a redacting filter, and every message built from a service answer is
passed through the same redaction.

Modules: settings (endpoints, limits, credentials), voices (the documented voices, each
language's default), redaction (secrets out of logs), text (pieces the gateway speaks whole),
token (CreateToken, cached), gateway (the REST client as an Engine).
"""

from .engine import SambertEngine
from .settings import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_APPKEY, SambertSettings
from .text import split_text

__all__ = ["ENV_ACCESS_KEY_ID", "ENV_ACCESS_KEY_SECRET", "ENV_APPKEY", "SambertEngine", "SambertSettings", "split_text"]
