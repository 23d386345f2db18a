"""The one error a SIP parse may raise."""

from __future__ import annotations


class SipParseError(ValueError):
    """Malformed SIP text.  ``status`` is the response a UAS should send (400, or
    505 for an unknown SIP version); ``line`` (1-based) and ``header`` say where."""

    def __init__(
        self,
        what: str,
        *,
        line: int | None = None,
        header: str | None = None,
        status: int = 400,
    ) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if header is not None:
            where.append(f"header {header!r}")
        text = f"{what} ({', '.join(where)})" if where else what
        super().__init__(text)
        self.what = what
        self.line = line
        self.header = header
        self.status = status
