"""The Home Assistant flags: a URL and a token from a file or the environment, checked at
start with a one-line error; the token is never kept in the parsed arguments (which are
logged at DEBUG)."""

from __future__ import annotations

import pytest

from wyoming_indextts.__main__ import parse_args
from wyoming_indextts.homeassistant.names import ENV_TOKEN, read_token


def test_token_from_a_file_or_the_environment_and_never_in_the_arguments(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("secret-from-file\n", encoding="utf-8")
    args = parse_args(["--ha-url", "http://ha.local:8123", "--ha-token-file", str(token_file)], environ={})
    assert read_token(args.ha_token_file, {}) == "secret-from-file"
    assert "secret-from-file" not in repr(vars(args))
    args = parse_args(["--ha-url", "http://supervisor/core"], environ={ENV_TOKEN: "secret-from-env"})
    assert read_token(args.ha_token_file, {ENV_TOKEN: "secret-from-env"}) == "secret-from-env"
    assert "secret-from-env" not in repr(vars(args))
    assert args.ha_replies_max == 2000 and args.ha_voice == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ha-url", "http://ha.local:8123"], "needs an access token"),
        (["--ha-url", "http://ha.local:8123", "--ha-token-file", "/nonexistent/token"], "cannot read the Home Assistant token file"),
        (["--ha-url", "ha.local"], "not an http(s)://"),
        (["--ha-token", "abc"], "a token on the command line is readable by every user"),
    ],
)
def test_bad_home_assistant_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv, environ={})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "abc" not in err and "/nonexistent/token" not in err  # a mistyped secret is not echoed
