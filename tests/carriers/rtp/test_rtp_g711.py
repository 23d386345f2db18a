import numpy as np
import pytest

from carriers.rtp import g711


def all_int16() -> np.ndarray:
    return np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_known_mulaw_code_points() -> None:
    # G.711 Table 2a: 0xFF/0x7F are +/-0, 0x80/0x00 are +/-8031 in 14-bit (x4 = 32124).
    dec = g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0xEF]))
    assert dec.tolist() == [0, 0, 32124, -32124, 8, 132]
    assert g711.ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xFF, 0x7F, 0x80, 0x00]
    )


def test_known_alaw_code_points() -> None:
    # G.711 Table 1a: 0xD5/0x55 are the smallest +/- levels; 0xAA/0x2A the largest.
    dec = g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))
    assert dec.tolist() == [8, -8, 32256, -32256]
    assert g711.alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A]
    )


@pytest.mark.parametrize("pt", [g711.PT_PCMU, g711.PT_PCMA])
def test_decoded_codes_are_fixed_points(pt: int) -> None:
    levels = g711.decode(bytes(range(256)), pt)
    assert np.array_equal(g711.decode(g711.encode(levels, pt), pt), levels)


@pytest.mark.parametrize("pt", [g711.PT_PCMU, g711.PT_PCMA])
def test_round_trip_error_bounded_relative(pt: int) -> None:
    x = all_int16()
    y = g711.decode(g711.encode(x, pt), pt).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    # Companding: quantisation step is at most 1/16 of the segment, so ~3.2 % relative
    # error for large signals and a few LSBs (in 16-bit scale) near zero.
    big = np.abs(x.astype(np.int32)) > 1024
    assert np.all(err[big] <= np.abs(x.astype(np.int32))[big] * 0.033 + 1)
    assert err[~big].max() <= 32
    assert err.max() <= 1024


@pytest.mark.parametrize("pt", [g711.PT_PCMU, g711.PT_PCMA])
def test_encoding_is_monotonic_and_symmetric(pt: int) -> None:
    x = all_int16()
    y = g711.decode(g711.encode(x, pt), pt).astype(np.int32)
    assert np.all(np.diff(y) >= 0)
    levels = g711.decode(bytes(range(256)), pt).astype(np.int32)
    assert sorted(levels[levels > 0].tolist()) == sorted((-levels[levels < 0]).tolist())


def test_silence_codes() -> None:
    assert g711.silence_code(g711.PT_PCMU) == 0xFF
    assert g711.silence_code(g711.PT_PCMA) == 0xD5


def test_transcoding_preserves_signal() -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 4000, 1600)).clip(-32768, 32767).astype(np.int16)
    mu = g711.encode(x, g711.PT_PCMU)
    a = g711.transcode(mu, g711.PT_PCMU, g711.PT_PCMA)
    assert a == g711.encode(g711.decode(mu, g711.PT_PCMU), g711.PT_PCMA)
    back = g711.decode(g711.transcode(a, g711.PT_PCMA, g711.PT_PCMU), g711.PT_PCMU)
    snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((back - x.astype(float)) ** 2))
    assert snr > 30
    assert g711.transcode(mu, 0, 0) is mu


def test_bad_input_errors() -> None:
    with pytest.raises(TypeError, match="int16"):
        g711.ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"not G\.711"):
        g711.encode(np.zeros(4, dtype=np.int16), 18)
    with pytest.raises(ValueError, match=r"not G\.711"):
        g711.transcode(b"", 0, 9)


def test_vectorised_tables_match_scalar_reference() -> None:
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).tolist()
    assert g711.ULAW_ENCODE.tolist() == [g711._mulaw_encode_one(s) for s in samples]
    assert g711.ALAW_ENCODE.tolist() == [g711._alaw_encode_one(s) for s in samples]
