"""The udpcast extra-argument validator (pure)."""

from __future__ import annotations

import pytest

from app.profiles.multicast_args import validate_udpcast_args


def test_known_sender_options_become_argv() -> None:
    argv = validate_udpcast_args(
        "--max-bitrate 500m --fec 8x8/128 --min-receivers=3 --nokbd --ttl 2", "sender")
    assert argv == ["--max-bitrate", "500m", "--fec", "8x8/128", "--min-receivers", "3",
                    "--nokbd", "--ttl", "2"]


def test_quoted_values_that_parse_are_accepted() -> None:
    assert validate_udpcast_args("--log '/var/log/udp.log'", "receiver") == [
        "--log", "/var/log/udp.log"]


def test_empty_text_is_no_arguments() -> None:
    assert validate_udpcast_args("   ", "sender") == []


@pytest.mark.parametrize("text", [
    "--nokbd; reboot", "--ttl 1 && rm -rf /", "--ttl 1 | cat", "--log $HOME/x",
    "--log `id`", "--ttl 1 > /dev/sda", "--ttl $(id)", "--nokbd\n--async", "--log a\\b",
    "--ttl {1,2}",
])
def test_shell_metacharacters_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="metacharacters"):
        validate_udpcast_args(text, "sender")


def test_unbalanced_quotes_are_refused() -> None:
    with pytest.raises(ValueError, match="quotes"):
        validate_udpcast_args("--log '/tmp/x", "sender")


@pytest.mark.parametrize("option", ["--file /tmp/x", "--portbase 9000", "--interface eth0",
                                    "--portbase=9000"])
def test_options_castor_sets_are_refused_with_a_reason(option: str) -> None:
    for role in ("sender", "receiver"):
        with pytest.raises(ValueError, match="set by Castor"):
            validate_udpcast_args(option, role)


def test_unknown_and_wrong_role_options_are_refused() -> None:
    with pytest.raises(ValueError, match="not a known udp-sender option"):
        validate_udpcast_args("--exec-this now", "sender")
    # --nosync is a receiver option; --max-bitrate is a sender option.
    with pytest.raises(ValueError, match="udp-sender"):
        validate_udpcast_args("--nosync", "sender")
    with pytest.raises(ValueError, match="udp-receiver"):
        validate_udpcast_args("--max-bitrate 10m", "receiver")
    assert validate_udpcast_args("--nosync --exitWait 5", "receiver") == [
        "--nosync", "--exitWait", "5"]


def test_positional_words_are_refused() -> None:
    with pytest.raises(ValueError, match="options start with --"):
        validate_udpcast_args("--nokbd extra", "sender")


@pytest.mark.parametrize("text, message", [
    ("--ttl", "needs a value"),
    ("--ttl abc", "whole number"),
    ("--mcast-rdv-address 300.1.1.1", "IPv4"),
    ("--max-bitrate fast", "bit rate"),
    ("--fec 8by8", "FEC"),
    ("--nokbd=1", "takes no value"),
    ("--log ../../etc/passwd", "'..'"),
])
def test_bad_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_udpcast_args(text, "sender")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        validate_udpcast_args("--nokbd", "relay")  # type: ignore[arg-type]
