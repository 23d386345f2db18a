"""G.711 mu-law encode/decode in numpy (the codec round trip every clip goes through)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84
_CLIP = 32635


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return np.asarray(code, dtype=np.uint8)


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    c = ~codes.astype(np.int32) & 0xFF
    sign = c & 0x80
    exponent = (c >> 4) & 0x07
    mantissa = c & 0x0F
    mag = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


def round_trip(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    return ulaw_decode(ulaw_encode(samples))
