"""G.711 mu-law (PCMU, PT 0) and A-law (PCMA, PT 8) with numpy lookup tables.

Decoding indexes a 256-entry table by the code byte; encoding indexes a
65536-entry table by the uint16 view of each int16 sample, so a whole frame is
one ``take``.  Tables are built once at import from the ITU-T G.711 segment rules.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PT_PCMU = 0
PT_PCMA = 8

Int16Array = npt.NDArray[np.int16]

_MU_BIAS = 0x84
_MU_CLIP = 32635


def _mulaw_encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    mag = min(-sample if sample < 0 else sample, _MU_CLIP) + _MU_BIAS
    exponent = mag.bit_length() - 8  # bias guarantees mag >= 0x84, so exponent >= 0
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _mulaw_decode_one(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = (((mantissa << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return -mag if code & 0x80 else mag


def _alaw_encode_one(sample: int) -> int:
    # A-law works on 13-bit magnitudes; sign bit set means positive.
    if sample >= 0:
        sign = 0x80
        mag = sample >> 3
    else:
        sign = 0
        mag = (-sample - 1) >> 3
    if mag < 32:
        code = mag >> 1
    else:
        exponent = min(mag.bit_length() - 5, 7)
        code = 0x7F if mag >= 4096 else (exponent << 4) | ((mag >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return mag if code & 0x80 else -mag


def _bit_length(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    # frexp gives x = m * 2**e with 0.5 <= m < 1, so e is exactly the bit length.
    return np.frexp(x.astype(np.float64))[1].astype(np.int64)


def _mulaw_encode_all(s: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    sign = np.where(s < 0, 0x80, 0)
    mag = np.minimum(np.abs(s), _MU_CLIP) + _MU_BIAS
    exponent = _bit_length(mag) - 8
    mantissa = (mag >> (exponent + 3)) & 0x0F
    code: npt.NDArray[np.int64] = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return code.astype(np.uint8)


def _alaw_encode_all(s: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    sign = np.where(s >= 0, 0x80, 0)
    mag = np.where(s >= 0, s, -s - 1) >> 3
    exponent = np.clip(_bit_length(mag) - 5, 0, 7)
    segment = (exponent << 4) | ((mag >> exponent) & 0x0F)
    code = np.where(mag < 32, mag >> 1, np.where(mag >= 4096, 0x7F, segment))
    return ((sign | code) ^ 0x55).astype(np.uint8)


def _build_tables() -> tuple[Int16Array, npt.NDArray[np.uint8], Int16Array, npt.NDArray[np.uint8]]:
    # Encode tables are built vectorised (import-time cost); the scalar functions
    # above are the readable reference the tests check them against.
    codes = range(256)
    ulaw_dec = np.array([_mulaw_decode_one(c) for c in codes], dtype=np.int16)
    alaw_dec = np.array([_alaw_decode_one(c) for c in codes], dtype=np.int16)
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)
    return ulaw_dec, _mulaw_encode_all(samples), alaw_dec, _alaw_encode_all(samples)


ULAW_DECODE, ULAW_ENCODE, ALAW_DECODE, ALAW_ENCODE = _build_tables()
for _t in (ULAW_DECODE, ULAW_ENCODE, ALAW_DECODE, ALAW_ENCODE):
    _t.flags.writeable = False
# Direct code-to-code transcoding through linear (G.711 Annex-free, table based).
ULAW_TO_ALAW: npt.NDArray[np.uint8] = ALAW_ENCODE[ULAW_DECODE.view(np.uint16)]
ALAW_TO_ULAW: npt.NDArray[np.uint8] = ULAW_ENCODE[ALAW_DECODE.view(np.uint16)]


def _as_int16(samples: npt.ArrayLike) -> Int16Array:
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got dtype {arr.dtype}")
    return arr


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    return ULAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    return ALAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def ulaw_decode(payload: bytes) -> Int16Array:
    return ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def alaw_decode(payload: bytes) -> Int16Array:
    return ALAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def encode(samples: npt.ArrayLike, payload_type: int) -> bytes:
    """Encode int16 samples for static payload type 0 (PCMU) or 8 (PCMA)."""
    if payload_type == PT_PCMU:
        return ulaw_encode(samples)
    if payload_type == PT_PCMA:
        return alaw_encode(samples)
    raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")


def decode(payload: bytes, payload_type: int) -> Int16Array:
    if payload_type == PT_PCMU:
        return ulaw_decode(payload)
    if payload_type == PT_PCMA:
        return alaw_decode(payload)
    raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")


def transcode(payload: bytes, from_pt: int, to_pt: int) -> bytes:
    """Re-encode a G.711 payload between PCMU and PCMA (identity when equal)."""
    for pt in (from_pt, to_pt):
        if pt not in (PT_PCMU, PT_PCMA):
            raise ValueError(f"payload type {pt} is not G.711 (0 or 8)")
    if from_pt == to_pt:
        return payload
    table = ULAW_TO_ALAW if from_pt == PT_PCMU else ALAW_TO_ULAW
    return table[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def silence_code(payload_type: int) -> int:
    """The code byte for digital silence (0xFF in mu-law, 0xD5 in A-law)."""
    return int(encode(np.zeros(1, dtype=np.int16), payload_type)[0])
