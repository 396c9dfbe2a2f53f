"""The one error Connect code raises: an HTTP status with a precise ``{code, message}``."""

from __future__ import annotations


class ConnectError(Exception):
    """A Connect request that is refused; ``status`` and ``code`` form the HTTP answer."""

    def __init__(self, code: str, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def to_dict(self) -> dict[str, str]:
        """Return the JSON error body ``{code, message}``."""
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"ConnectError({self.code!r}, {self.message!r}, status={self.status})"
