"""Signed-install public keys, fetched by ``kid`` with a timeout and cached for the process."""

from __future__ import annotations

import logging
import re
import threading
import time

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from plugin.connect.errors import ConnectError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0
MAX_KEY_BYTES = 16 * 1024
MIN_KEY_BITS = 2048
# The kid comes from a header nobody has verified yet and becomes part of a URL: allow only
# plain path segments, so it can never leave the keys folder or add a query.
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,3}")


class InstallKeys:
    """Atlassian's install keys by kid; a kid's key never changes, so a found key stays cached."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout_s: float = FETCH_TIMEOUT_S,
        max_keys: int = 64,
        miss_ttl_s: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_keys = max_keys
        self.miss_ttl_s = miss_ttl_s
        self._session = session or requests.Session()
        self._keys: dict[str, RSAPublicKey] = {}
        # Unknown kids are remembered for a while, so a stream of forged installs cannot make
        # every request wait on the key server.
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()

    def public_key(self, kid: str) -> RSAPublicKey:
        """Return the RSA public key of ``kid``, fetching it on first use."""
        if not _KEY_ID.fullmatch(kid):
            raise ConnectError("unknown_kid", "The install token's kid is not a key id.")
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            missed_until = self._misses.get(kid)
            if missed_until is not None and missed_until > time.monotonic():
                raise _unknown(kid)
        key = self._fetch(kid)
        with self._lock:
            self._keys[kid] = key
            self._misses.pop(kid, None)
            while len(self._keys) > self.max_keys:
                self._keys.pop(next(iter(self._keys)))
        return key

    def _fetch(self, kid: str) -> RSAPublicKey:
        url = f"{self.base_url}/{kid}"
        started = time.monotonic()
        try:
            with self._session.get(url, timeout=self.timeout_s, stream=True) as response:
                status = response.status_code
                body = _read_capped(response) if status == 200 else b""
        except requests.RequestException as exc:
            log.warning("connect.install-key.unavailable", extra={"kid": kid, "error": repr(exc)})
            raise ConnectError(
                "install_keys_unavailable",
                "Atlassian's install key server could not be reached; try the install again.",
                status=503,
            ) from exc
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log.info(
            "connect.install-key.fetched", extra={"kid": kid, "status": status, "ms": elapsed_ms}
        )
        if status in (403, 404):
            # The key CDN answers a missing object with 403 or 404.
            self._remember_miss(kid)
            raise _unknown(kid)
        if status != 200:
            raise ConnectError(
                "install_keys_unavailable",
                f"Atlassian's install key server answered {status}; try the install again.",
                status=503,
            )
        try:
            key = load_pem_public_key(body)
        except ValueError as exc:
            self._remember_miss(kid)
            raise _unknown(kid) from exc
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_KEY_BITS:
            self._remember_miss(kid)
            raise _unknown(kid)
        return key

    def _remember_miss(self, kid: str) -> None:
        with self._lock:
            self._misses[kid] = time.monotonic() + self.miss_ttl_s
            while len(self._misses) > self.max_keys:
                self._misses.pop(next(iter(self._misses)))


def _read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(4096):
        size += len(chunk)
        if size > MAX_KEY_BYTES:
            raise ConnectError(
                "install_keys_unavailable", "The install key is implausibly large.", status=503
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _unknown(kid: str) -> ConnectError:
    return ConnectError("unknown_kid", f"No Atlassian install key has the id {kid!r}.")
