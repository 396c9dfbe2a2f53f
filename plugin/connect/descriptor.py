"""The Connect descriptor: ``atlassian-connect.json`` at the repository root, served filled in."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The file lives at the repository root; an installed package (the container image) is told
# where it is by LEANGUARD_CONNECT_DESCRIPTOR.
DESCRIPTOR_PATH = Path(
    os.environ.get("LEANGUARD_CONNECT_DESCRIPTOR")
    or Path(__file__).resolve().parents[2] / "atlassian-connect.json"
)
BASE_URL_PLACEHOLDER = "{{localBaseUrl}}"
MAX_KEY_LENGTH = 64
LIFECYCLE_EVENTS = ("installed", "uninstalled", "enabled", "disabled")


class DescriptorError(ValueError):
    """The descriptor file is missing or cannot describe a Connect app."""


@dataclass(frozen=True)
class Descriptor:
    """The app's descriptor; modules are plain JSON, so adding one is one entry in the file."""

    document: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path = DESCRIPTOR_PATH) -> Descriptor:
        """Read and check the descriptor file."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DescriptorError(f"{path} does not exist") from exc
        except ValueError as exc:
            raise DescriptorError(f"{path} is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise DescriptorError(f"{path} must hold a JSON object")
        descriptor = cls(document)
        descriptor.check()
        return descriptor

    def check(self) -> None:
        """Refuse a descriptor Jira would reject or leanguard could not serve."""
        key = self.document.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise DescriptorError(f"key must be a string of 1 to {MAX_KEY_LENGTH} characters")
        if self.document.get("baseUrl") != BASE_URL_PLACEHOLDER:
            raise DescriptorError(f"baseUrl must be {BASE_URL_PLACEHOLDER!r}; it is filled in")
        if self.document.get("authentication") != {"type": "jwt"}:
            raise DescriptorError("authentication must be {'type': 'jwt'}")
        lifecycle = self.document.get("lifecycle")
        if not isinstance(lifecycle, Mapping) or any(
            not isinstance(lifecycle.get(event), str) for event in LIFECYCLE_EVENTS
        ):
            raise DescriptorError(f"lifecycle must name a path for each of {LIFECYCLE_EVENTS}")
        if not isinstance(self.document.get("modules"), Mapping):
            raise DescriptorError("modules must be an object of module lists")

    @property
    def key(self) -> str:
        """The app key: the ``iss`` of every token leanguard signs for Jira."""
        return str(self.document["key"])

    def modules(self, kind: str) -> list[Mapping[str, Any]]:
        """Return the modules of one kind (``webhooks``, ``jiraIssueContexts``, ...)."""
        found = self.document["modules"].get(kind)
        return [module for module in found or [] if isinstance(module, Mapping)]

    @property
    def status_property(self) -> str:
        """The issue property that feeds the issue-context label ("" without such a module)."""
        contexts = self.modules("jiraIssueContexts")
        if not contexts:
            return ""
        return f"com.atlassian.jira.issue:{self.key}:{contexts[0]['key']}:status"

    def render(self, base_url: str) -> dict[str, Any]:
        """Return the descriptor as served: a copy with this service's base URL."""
        served = copy.deepcopy(dict(self.document))
        served["baseUrl"] = base_url.rstrip("/")
        return served
