"""Every channel's text as the SMPP seed describes it, and every way a request can be wrong."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.compose import RenderedMessage, render
from tests.compose.composecheck import compose, refused, request, sent_text


@pytest.mark.parametrize(
    ("channel", "options", "text", "expected"),
    [
        ("sms", {}, "Hello", "Hello"),
        ("flash", {}, "Hello", "Hello"),
        ("viber", {}, "Hello", "__VIBER__: Hello"),
        ("social", {}, "Hello", "__SOC__: Hello"),
        ("mail", {"subject": "Order 42"}, "Hello", "__MAIL__: Hello\nsubj:Order 42"),
        ("call", {}, "Hello", "__CALL__: Hello"),
        ("call", {"voice": "w"}, "Hello", "__CALL__: Hello\nvoice:w"),
        ("call", {"voice": "m4"}, "Hello", "__CALL__: Hello\nvoice:m4"),
        ("call", {"voice": "w,fr"}, "Hello", "__CALL__: Hello\nvoice:w,fr"),
        ("call", {"voice": "w2", "language": "de"}, "Hallo", "__CALL__: Hallo\nvoice:w2,de"),
        ("call", {"language": "en"}, "Hello", "__CALL__: Hello\nvoice:m3,en"),
        ("call", {"param": "60,3,2"}, "Hello", "__CALL__: Hello\n~~~\n60,3,2"),
        ("telegram_code", {}, "1234", "__TGM__: 1234"),
        ("telegram_code", {"code": "12345678"}, "12345678", "__TGM__: 12345678"),
        ("telegram_code", {"code": "0042"}, " ", "__TGM__: 0042"),
        ("telegram_bot", {"bot": "@shop_bot"}, "Hi", "__BOT__: Hi\nbot:@shop_bot"),
        ("telegram_bot", {"bot": "ShopBot"}, "Hi", "__BOT__: Hi\nbot:@ShopBot"),
        ("hlr", {}, "anything", "__HLR__"),
        ("ping", {}, "anything", "__PING__"),
    ],
)
def test_channel_text(channel: str, options: dict[str, str], text: str, expected: str) -> None:
    assert sent_text(channel=channel, provider_options=options, text=text) == expected


@pytest.mark.parametrize(
    ("channel", "options"),
    [
        ("sms", {}),
        ("viber", {}),
        ("social", {}),
        ("mail", {"subject": "S"}),
        ("telegram_code", {"code": "1234"}),
        ("telegram_bot", {"bot": "a_bot"}),
    ],
)
def test_comment_follows_everything(channel: str, options: dict[str, str]) -> None:
    text = sent_text(channel=channel, provider_options=options, text="1234", comment="c-1")
    assert text.endswith("\n~~~\nc-1")
    assert text.count("\n~~~\n") == 1


def test_comment_decides_the_encoding_of_the_whole_message() -> None:
    composed = compose(text="Code 1234", comment="вход")
    assert composed.parts[0].data_coding == 8
    assert sent_text(text="Code 1234", comment="вход") == "Code 1234\n~~~\nвход"


def test_flash_is_message_class_0_in_every_alphabet() -> None:
    assert compose(channel="flash", text="Hi").parts[0].data_coding == 0x10
    assert compose(channel="flash", text="Привет").parts[0].data_coding == 0x18
    binary = {"encoding": "binary"}
    assert compose(channel="flash", text="00ff", provider_options=binary).parts[0].data_coding == (
        0x14
    )


def test_rendered_message_is_transport_independent() -> None:
    rendered = render(
        request(channel="mail", text="Body", comment="ops", provider_options={"subject": "S"})
    )
    assert rendered == RenderedMessage(
        channel="mail",
        text="__MAIL__: Body\nsubj:S\n~~~\nops",
        body="Body",
        comment="ops",
        fields=rendered.fields,
    )
    assert dict(rendered.fields) == {"subject": "S"}
    call = render(request(channel="call", provider_options={"voice": "w", "param": "1"}))
    assert (call.body, call.comment, dict(call.fields)) == (
        "Hello",
        "1",
        {"voice": "w", "param": "1"},
    )
    assert render(request(channel="hlr")).body == ""


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        ("unsupported_channel", {"channel": "fax"}),
        ("unknown_provider_option", {"provider_options": {"subjcet": "x"}}),
        ("option_not_applicable", {"provider_options": {"subject": "x"}}),
        ("option_not_applicable", {"channel": "hlr", "provider_options": {"encoding": "ucs2"}}),
        ("option_not_applicable", {"channel": "viber", "provider_options": {"encoding": "binary"}}),
        ("option_not_applicable", {"channel": "telegram_code", "provider_options": {"bot": "x"}}),
        ("invalid_encoding", {"provider_options": {"encoding": "utf8"}}),
        ("invalid_encoding", {"provider_options": {"encoding": 8}}),
        ("invalid_binary", {"text": "0g", "provider_options": {"encoding": "binary"}}),
        ("invalid_binary", {"text": "abc", "provider_options": {"encoding": "binary"}}),
        ("invalid_binary", {"text": "  ", "provider_options": {"encoding": "binary"}}),
        ("missing_subject", {"channel": "mail"}),
        ("invalid_subject", {"channel": "mail", "provider_options": {"subject": ""}}),
        ("invalid_subject", {"channel": "mail", "provider_options": {"subject": "a\nb"}}),
        ("invalid_subject", {"channel": "mail", "provider_options": {"subject": "s" * 256}}),
        ("invalid_subject", {"channel": "mail", "provider_options": {"subject": 5}}),
        ("invalid_voice", {"channel": "call", "provider_options": {"voice": "m5"}}),
        ("invalid_voice", {"channel": "call", "provider_options": {"voice": "x"}}),
        ("invalid_voice", {"channel": "call", "provider_options": {"voice": "w,french"}}),
        (
            "invalid_voice",
            {"channel": "call", "provider_options": {"voice": "w,fr", "language": "de"}},
        ),
        ("invalid_language", {"channel": "call", "provider_options": {"language": "FR"}}),
        ("invalid_call_param", {"channel": "call", "provider_options": {"param": "a,b"}}),
        ("invalid_call_param", {"channel": "call", "provider_options": {"param": "1,2,3,4"}}),
        ("missing_bot", {"channel": "telegram_bot"}),
        ("invalid_bot", {"channel": "telegram_bot", "provider_options": {"bot": "@shop"}}),
        ("invalid_bot", {"channel": "telegram_bot", "provider_options": {"bot": "@1shop_bot"}}),
        ("invalid_bot", {"channel": "telegram_bot", "provider_options": {"bot": "@bot"}}),
        ("invalid_bot", {"channel": "telegram_bot", "provider_options": {"bot": "sh-op_bot"}}),
        ("invalid_bot", {"channel": "telegram_bot", "provider_options": {"bot": "a" * 30 + "bot"}}),
        ("invalid_telegram_code", {"channel": "telegram_code", "text": "123"}),
        ("invalid_telegram_code", {"channel": "telegram_code", "text": "123456789"}),
        ("invalid_telegram_code", {"channel": "telegram_code", "text": "12a4"}),
        ("invalid_telegram_code", {"channel": "telegram_code", "text": "١٢٣٤"}),  # Arabic digits
        (
            "invalid_telegram_code",
            {"channel": "telegram_code", "provider_options": {"code": 1234}},
        ),
        (
            "conflicting_telegram_code",
            {"channel": "telegram_code", "text": "1111", "provider_options": {"code": "2222"}},
        ),
        ("comment_not_allowed", {"channel": "call", "comment": "c"}),
        ("comment_not_allowed", {"channel": "hlr", "comment": "c"}),
        ("comment_not_allowed", {"channel": "ping", "comment": "c"}),
        (
            "comment_not_allowed",
            {"text": "00", "comment": "c", "provider_options": {"encoding": "binary"}},
        ),
        ("text_contains_comment_marker", {"text": "a\n~~~\nb"}),
        ("text_contains_comment_marker", {"text": "a\n~~~"}),
        ("text_contains_comment_marker", {"channel": "viber", "text": "a\n~~~\nb"}),
        ("reserved_prefix", {"text": "__HLR__"}),
        ("reserved_prefix", {"channel": "flash", "text": "  __VIBER__: hi"}),
        (
            "reserved_line",
            {"channel": "mail", "text": "a\nsubj:b", "provider_options": {"subject": "s"}},
        ),
        ("reserved_line", {"channel": "call", "text": "a\nvoice:w"}),
        (
            "reserved_line",
            {
                "channel": "telegram_bot",
                "text": "a\nbot:@x_bot",
                "provider_options": {"bot": "a_bot"},
            },
        ),
    ],
)
def test_invalid_requests(code: str, fields: dict[str, Any]) -> None:
    refused(code, **fields)


def test_misplaced_options_are_named() -> None:
    message = refused("option_not_applicable", provider_options={"voice": "w", "bot": "a_bot"})
    assert "bot, voice" in message
    assert "channel sms" in message


def test_unknown_options_list_the_known_ones() -> None:
    message = refused("unknown_provider_option", provider_options={"tinyurl": 1})
    assert "tinyurl" in message
    assert "encoding" in message


def test_channel_prefix_inside_a_text_is_harmless() -> None:
    assert sent_text(text="See __HLR__ docs") == "See __HLR__ docs"
    assert sent_text(channel="viber", text="__HLR__") == "__VIBER__: __HLR__"
