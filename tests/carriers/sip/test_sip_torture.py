"""RFC 4475 torture messages: the verdict for each file follows the manifest."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from carriers.sip import Request, Response, SipParseError, application_check, parse_message

TORTURE = Path("/work/shared/reference/sip-torture-rfc4475")
if not TORTURE.is_dir():
    TORTURE = Path(__file__).resolve().parents[4] / "shared/reference/sip-torture-rfc4475"

pytestmark = pytest.mark.skipif(not TORTURE.is_dir(), reason=f"no torture corpus at {TORTURE}")

# What a UA does with the application-layer cases (None: process normally;
# "drop": discard silently; int: answer with that status).
APPLICATION: dict[str, int | str | None] = {
    "badbranch.dat": None,
    "insuf.dat": 400,
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": None,
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": 401,
    "multi01.dat": 400,
    "mcl01.dat": 400,  # raised by the parser: two Content-Lengths cannot be framed
    "bcast.dat": "drop",
    "zeromf.dat": None,
    "cparam01.dat": None,
    "cparam02.dat": None,
    "regescrt.dat": None,
    "sdp01.dat": 406,
    "inv2543.dat": None,
    # valid messages whose method a plain UA does not implement
    "intmeth.dat": 501,
    "esc02.dat": 501,
    "mpart01.dat": 501,
}


def _manifest() -> list[dict[str, str]]:
    if not TORTURE.is_dir():
        return []
    with open(TORTURE / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


ROWS = _manifest()


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r["verdict"] == "valid"], ids=lambda r: r["file"]
)
def test_valid_messages_parse(row: dict[str, str]) -> None:
    msg = parse_message((TORTURE / row["file"]).read_bytes())
    assert isinstance(msg, Request | Response)
    expected = APPLICATION.get(row["file"])
    refusal = application_check(msg)
    assert (refusal.status if refusal else None) == expected


@pytest.mark.parametrize(
    "row",
    [r for r in ROWS if r["verdict"] in ("invalid", "not in RFC 4475")],
    ids=lambda r: r["file"],
)
def test_invalid_messages_raise(row: dict[str, str]) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message((TORTURE / row["file"]).read_bytes())
    assert info.value.status == (505 if row["file"] == "badvers.dat" else 400)
    assert str(info.value)  # says what is wrong


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r["verdict"].startswith("valid-syntax")], ids=lambda r: r["file"]
)
def test_application_layer_verdicts(row: dict[str, str]) -> None:
    expected = APPLICATION[row["file"]]
    data = (TORTURE / row["file"]).read_bytes()
    if row["file"] == "mcl01.dat":
        with pytest.raises(SipParseError, match="Content-Length"):
            parse_message(data)
        return
    refusal = application_check(parse_message(data))
    if expected is None:
        assert refusal is None
    elif expected == "drop":
        assert refusal is not None and refusal.status is None
    else:
        assert refusal is not None and refusal.status == expected


def test_manifest_is_complete() -> None:
    assert len(ROWS) == 50
    assert all((TORTURE / r["file"]).is_file() for r in ROWS)


def test_wsinv_details() -> None:
    msg = parse_message((TORTURE / "wsinv.dat").read_bytes())
    assert isinstance(msg, Request)
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.to.tag == "1918181833n"
    assert msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    via = msg.via
    assert via[0].transport == "UDP" and via[0].host == "192.0.2.2"
    assert via[0].branch == "390skdjuw"
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("Subject") == ""  # "s :" compact form, empty value
    assert len(msg.body) == 150


def test_dblreq_keeps_only_first_message() -> None:
    data = (TORTURE / "dblreq.dat").read_bytes()
    msg = parse_message(data)
    assert isinstance(msg, Request) and msg.method == "REGISTER"
    assert msg.body == b""


def test_escnull_keeps_nul() -> None:
    msg = parse_message((TORTURE / "escnull.dat").read_bytes())
    assert "%00" in msg.to.uri.user  # type: ignore[union-attr, operator]
    assert "\x00" in msg.to.uri.user_unescaped  # type: ignore[union-attr, operator]


def test_mpart_body_is_bytes_with_nuls() -> None:
    msg = parse_message((TORTURE / "mpart01.dat").read_bytes())
    assert b"\x00" in msg.body or b"\r" in msg.body
    assert msg.content_type == "multipart/mixed"
