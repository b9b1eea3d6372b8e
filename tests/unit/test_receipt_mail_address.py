"""E-mail address checks before the kiosk accepts one (syntax and domain form, no DNS)."""

from __future__ import annotations

import pytest

from edge.takeaway.mail import AddressError, validate_address


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("camille@example.fr", "camille@example.fr"),
        ("  Camille.Durand+kiosk@Example.FR ", "Camille.Durand+kiosk@example.fr"),
        ("a@b.co", "a@b.co"),
        ("léa@exemple-café.fr", None),  # non-ASCII local part: refused below
        ("lea@café.fr", "lea@xn--caf-dma.fr"),
        ("x@sub.domain.xn--p1ai", "x@sub.domain.xn--p1ai"),
    ],
)
def test_valid_addresses(raw: str, clean: str | None) -> None:
    """Valid addresses come back trimmed, domain lower-case ASCII (IDNA)."""
    if clean is None:
        with pytest.raises(AddressError):
            validate_address(raw)
    else:
        assert validate_address(raw) == clean


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("camille", "exactly one @"),
        ("a@b@c.fr", "exactly one @"),
        ("camille@localhost", "needs a dot"),
        ("camille@example.f", "does not end like"),
        ("camille@example.123", "does not end like"),
        ("camille@-example.fr", "domain after the @ is not valid"),
        ("camille@exa_mple.fr", "domain after the @ is not valid"),
        ("camille@example..fr", "domain after the @ is not valid"),
        (".camille@example.fr", "before the @"),
        ("cam..ille@example.fr", "before the @"),
        ("camille durand@example.fr", "spaces"),
        ("camille@example.fr\r\nBcc: x@evil.com", "spaces"),
        ('"camille"@example.fr', "not allowed"),
        ("c" * 65 + "@example.fr", "before the @"),
        ("c@" + "d" * 250 + ".fr", "longer than 254"),
    ],
)
def test_invalid_addresses_say_why_without_echoing(raw: str, message: str) -> None:
    """Each refusal names the problem and never repeats the address."""
    with pytest.raises(AddressError, match=message) as info:
        validate_address(raw)
    if raw.strip():
        assert raw.strip() not in str(info.value)


def test_mail_config_refuses_what_smtp_cannot_use_without_echoing_secrets() -> None:
    """A non-ASCII SMTP password and a malformed sender fail the config check; the problem
    names the key, never the password (problems reach logs, doctor and /admin)."""
    from edge.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"mail": {"password": "été-secret-42", "sender": "Kiosk <k@shop.example>"}})
    problems = {p.key: str(p) for p in info.value.problems}
    assert set(problems) == {"mail.password", "mail.sender"}
    assert "ASCII" in problems["mail.password"]
    assert "été-secret-42" not in str(info.value)
    assert "<secret>" in problems["mail.password"]
    assert "kiosk@shop.example" in problems["mail.sender"]  # the example of the right form
    with pytest.raises(ConfigError) as info:
        parse_config({"kiosk": {"admin_password": 12345678}})
    assert "12345678" not in str(info.value)
    ok = parse_config({"mail": {"password": "s3cret!", "sender": "kiosk@magasin-demo.fr"}})
    assert ok.mail.sender == "kiosk@magasin-demo.fr"
