"""Contract checks: every request a fake tracker receives must be one the real tracker accepts.

Jira requests are validated against Atlassian's OpenAPI document and Linear requests against
Linear's GraphQL schema, both read from ``LEANGUARD_SCHEMAS_DIR`` (default: the repository's
``../shared/schemas``). A request that drifts (a renamed path, an unknown query parameter, a
body field Jira does not know, a GraphQL field Linear does not have, a variable of the wrong
type) fails the test with an ``AssertionError`` naming what drifted.

Usage with ``responses`` — every call is checked before it is matched, including calls that
match no registered response::

    from support.contracts import tracker_mock

    def test_posts_card() -> None:
        with tracker_mock() as rsps:
            rsps.post("https://acme.atlassian.net/rest/api/3/issue/ACME-1/comment",
                      json={"id": "10000"}, status=201)
            ...

``tracker_mock(ordered=True)`` uses ``responses``' ordered registry. With the module-level
``responses`` API, pass the registry: ``@responses.activate(registry=ContractRegistry)``. For a
single callback response, wrap the handler: ``rsps.add_callback(method, url,
callback=validating_callback(handler))``. The checks can also be called directly on a
``requests.PreparedRequest``: ``assert_jira_request_valid``, ``assert_linear_request_valid``,
``assert_tracker_request_valid`` (picks by URL: ``/rest/api/`` is Jira, ``/graphql`` is Linear,
anything else is not checked), and ``assert_adf_document`` for a Jira Cloud comment body.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses
from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.validators import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
)
from responses.registries import FirstMatchRegistry, OrderedRegistry

JIRA_SPEC_FILE = "jira-platform-v3.openapi.json"
LINEAR_SCHEMA_FILE = "linear.graphql"
_JIRA_API_MARKER = "/rest/api/"

RequestCheck = Callable[[requests.PreparedRequest], None]
CallbackResult = tuple[int, Mapping[str, str], str | bytes]

# Node and mark types of the Atlassian Document Format that Jira Cloud renders in comments.
ADF_NODE_TYPES = frozenset(
    {
        "doc",
        "paragraph",
        "text",
        "heading",
        "bulletList",
        "orderedList",
        "listItem",
        "panel",
        "blockquote",
        "codeBlock",
        "rule",
        "hardBreak",
        "emoji",
        "mention",
        "inlineCard",
        "status",
        "date",
        "expand",
        "table",
        "tableRow",
        "tableHeader",
        "tableCell",
    }
)
ADF_MARK_TYPES = frozenset(
    {"strong", "em", "code", "link", "strike", "underline", "subsup", "textColor"}
)
ADF_PANEL_TYPES = frozenset({"info", "note", "warning", "success", "error", "custom"})
_ADF_INLINE = frozenset({"text", "hardBreak", "emoji", "mention", "inlineCard", "status", "date"})
_ADF_CHILDREN = {
    "doc": frozenset(ADF_NODE_TYPES - _ADF_INLINE - {"doc", "listItem", "tableRow"}),
    "paragraph": _ADF_INLINE,
    "heading": _ADF_INLINE,
    "bulletList": frozenset({"listItem"}),
    "orderedList": frozenset({"listItem"}),
    "listItem": frozenset({"paragraph", "bulletList", "orderedList", "codeBlock"}),
    "panel": frozenset({"paragraph", "heading", "bulletList", "orderedList", "rule"}),
}


def schemas_dir() -> Path:
    """Return the folder holding the trackers' schemas (``LEANGUARD_SCHEMAS_DIR`` wins)."""
    configured = os.environ.get("LEANGUARD_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "schemas"


def jira_openapi() -> OpenAPI:
    """Return Jira's OpenAPI document, loaded once per process."""
    return _jira_openapi(schemas_dir() / JIRA_SPEC_FILE)


def linear_schema() -> GraphQLSchema:
    """Return Linear's GraphQL schema, built once per process."""
    return _linear_schema(schemas_dir() / LINEAR_SCHEMA_FILE)


@cache
def _jira_openapi(path: Path) -> OpenAPI:
    with path.open("rb") as handle:
        spec = json.load(handle)
    # The document is Atlassian's own and already valid; validating 2.4 MB of spec on every
    # run would cost seconds and check nothing of ours.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@cache
def _jira_validators(
    path: Path,
) -> tuple[APICallPathFinder, V30RequestParametersValidator, V30RequestBodyValidator]:
    spec = _jira_openapi(path).spec
    # Security is left out on purpose: auth schemes (basic, Bearer, Connect JWT) are asserted
    # by the client tests, and a security failure would stop openapi-core before the body.
    return (
        APICallPathFinder(spec),
        V30RequestParametersValidator(spec),
        V30RequestBodyValidator(spec, forbid_unspecified_additional_properties=True),
    )


@cache
def _linear_schema(path: Path) -> GraphQLSchema:
    return build_schema(path.read_text(encoding="utf-8"))


def assert_jira_request_valid(request: requests.PreparedRequest) -> None:
    """Fail unless the request is a Jira REST call the platform API accepts."""
    method = (request.method or "").lower()
    url = urlsplit(request.url or "")
    marker = url.path.find(_JIRA_API_MARKER)
    assert marker >= 0, f"not a Jira REST API URL: {request.url}"
    # A Data Center site may live under a context path (https://host/jira/rest/api/2/...).
    api_path = url.path[marker:]
    version = api_path[len(_JIRA_API_MARKER) :].split("/", 1)[0]
    assert version in ("2", "3"), f"unknown Jira REST API version {version!r} in {request.url}"
    spec_path = "/rest/api/3" + api_path[len(_JIRA_API_MARKER) + len(version) :]
    finder, parameters, body = _jira_validators(schemas_dir() / JIRA_SPEC_FILE)
    server = _server_url(jira_openapi())
    try:
        found = finder.find(method, server + spec_path)
    except PathError as exc:
        raise AssertionError(f"Jira has no {method.upper()} {api_path}: {exc!r}") from exc
    payload = _json_body(request)
    if version == "2":
        # Only the v3 (Cloud) document exists; v2 shares its paths and methods, but its bodies
        # differ (comment bodies are wiki strings, not ADF), so bodies are only checked as JSON.
        if _is_comment_write(method, spec_path):
            assert isinstance(payload, Mapping) and isinstance(payload.get("body"), str), (
                f"a Jira v2 comment body must be a wiki-markup string: {payload!r}"
            )
        return
    _assert_known_query(request, found.operation)
    checked = request.copy()
    checked.url = server + spec_path + (f"?{url.query}" if url.query else "")
    openapi_request = RequestsOpenAPIRequest(checked)
    errors = [*parameters.iter_errors(openapi_request), *body.iter_errors(openapi_request)]
    assert not errors, f"{method.upper()} {api_path} breaks Jira's contract: " + "; ".join(
        _describe(error) for error in errors
    )
    if _is_comment_write(method, spec_path):
        assert isinstance(payload, Mapping), f"a Jira comment needs a JSON object: {payload!r}"
        assert_adf_document(payload.get("body"))


def assert_adf_document(document: object) -> None:
    """Fail unless ``document`` is an ADF document of known node and mark types."""
    assert isinstance(document, Mapping), f"ADF must be an object, got {document!r}"
    assert document.get("type") == "doc", f"ADF root must be a doc: {document.get('type')!r}"
    assert document.get("version") == 1, f"ADF version must be 1: {document.get('version')!r}"
    _assert_adf_node(document, "doc")


def assert_linear_request_valid(request: requests.PreparedRequest) -> None:
    """Fail unless the request is a GraphQL call Linear's schema accepts, variables included."""
    assert request.method == "POST", f"Linear GraphQL calls are POSTs, not {request.method}"
    content_type = request.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"not JSON: {content_type!r}"
    payload = _json_body(request)
    assert isinstance(payload, Mapping), f"a GraphQL request must be a JSON object: {payload!r}"
    query = payload.get("query")
    assert isinstance(query, str) and query.strip(), "a GraphQL request needs a query"
    variables = payload.get("variables") or {}
    assert isinstance(variables, dict), f"variables must be an object: {variables!r}"
    schema = linear_schema()
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise AssertionError(f"GraphQL syntax error: {exc.message}") from exc
    errors = validate(schema, document)
    assert not errors, "GraphQL document breaks Linear's schema: " + "; ".join(
        error.message for error in errors
    )
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = payload.get("operationName")
    if name is not None:
        operations = [op for op in operations if op.name is not None and op.name.value == name]
        assert operations, f"operationName {name!r} names no operation in the document"
    assert len(operations) == 1, "a request must run exactly one operation"
    coerced = get_variable_values(schema, operations[0].variable_definitions or (), variables)
    if isinstance(coerced, list):
        raise AssertionError(
            "GraphQL variables do not fit: " + "; ".join(error.message for error in coerced)
        )


def assert_tracker_request_valid(request: requests.PreparedRequest) -> None:
    """Check a request against the contract its URL belongs to; other URLs pass unchecked."""
    path = urlsplit(request.url or "").path
    if _JIRA_API_MARKER in path:
        assert_jira_request_valid(request)
    elif path.rstrip("/").endswith("/graphql"):
        assert_linear_request_valid(request)


def contract_registry(
    check: RequestCheck = assert_tracker_request_valid,
    base: type[FirstMatchRegistry] = FirstMatchRegistry,
) -> type[FirstMatchRegistry]:
    """Return a ``responses`` registry class that checks every request before matching it."""

    class _ContractRegistry(base):  # type: ignore[misc,valid-type]
        def find(self, request: requests.PreparedRequest) -> Any:
            check(request)
            return super().find(request)

    _ContractRegistry.__name__ = f"Contract{base.__name__}"
    return _ContractRegistry


ContractRegistry = contract_registry()
OrderedContractRegistry = contract_registry(base=OrderedRegistry)


@contextmanager
def tracker_mock(
    *, ordered: bool = False, assert_all_requests_are_fired: bool = True
) -> Iterator[responses.RequestsMock]:
    """Fake the trackers with ``responses``; every request is checked against its contract."""
    registry = OrderedContractRegistry if ordered else ContractRegistry
    with responses.RequestsMock(
        registry=registry, assert_all_requests_are_fired=assert_all_requests_are_fired
    ) as rsps:
        yield rsps


def validating_callback(
    handler: Callable[[requests.PreparedRequest], CallbackResult],
    check: RequestCheck = assert_tracker_request_valid,
) -> Callable[[requests.PreparedRequest], CallbackResult]:
    """Wrap a ``responses`` callback so its request is checked before the handler answers."""

    def callback(request: requests.PreparedRequest) -> CallbackResult:
        check(request)
        return handler(request)

    return callback


def _server_url(api: OpenAPI) -> str:
    servers = api.spec.read_value().get("servers") or [{"url": ""}]
    return str(servers[0]["url"]).rstrip("/")


def _json_body(request: requests.PreparedRequest) -> Any:
    raw = request.body
    if raw is None or raw in (b"", ""):
        return None
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AssertionError(f"request body is not JSON: {text[:200]!r}") from exc


def _is_comment_write(method: str, spec_path: str) -> bool:
    return method in ("post", "put") and "/comment" in spec_path and "/properties" not in spec_path


def _assert_known_query(request: requests.PreparedRequest, operation: Any) -> None:
    # openapi-core ignores query parameters the operation does not declare; Jira ignores them
    # too, silently, which is exactly the drift worth catching (a misspelt notifyUsers).
    declared = {
        str(param["name"])
        for param in operation.read_value().get("parameters", [])
        if param.get("in") == "query"
    }
    sent = {
        name for name, _ in parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True)
    }
    unknown = sorted(sent - declared)
    assert not unknown, f"query parameters Jira does not declare: {unknown}"


def _describe(error: Exception) -> str:
    cause = error.__cause__
    details = getattr(cause, "schema_errors", None)
    if details:
        return f"{error!r}: " + ", ".join(getattr(d, "message", str(d)) for d in details)
    return f"{error!r} ({cause!r})" if cause else repr(error)


def _assert_adf_node(node: Mapping[str, Any], parent: str) -> None:
    kind = node.get("type")
    assert kind in ADF_NODE_TYPES, f"unknown ADF node type {kind!r} under {parent}"
    if kind == "text":
        text = node.get("text")
        assert isinstance(text, str) and text, "ADF text nodes must have non-empty text"
        for mark in node.get("marks", []):
            assert mark.get("type") in ADF_MARK_TYPES, f"unknown ADF mark {mark.get('type')!r}"
            if mark.get("type") == "link":
                assert mark.get("attrs", {}).get("href"), "ADF link marks need an href"
    if kind == "panel":
        panel_type = node.get("attrs", {}).get("panelType")
        assert panel_type in ADF_PANEL_TYPES, f"unknown ADF panelType {panel_type!r}"
    if kind == "emoji":
        assert node.get("attrs", {}).get("shortName"), "ADF emoji nodes need a shortName"
    content = node.get("content", [])
    assert isinstance(content, list), f"ADF content of {kind} must be a list"
    allowed = _ADF_CHILDREN.get(str(kind))
    if kind == "listItem" and content:
        assert content[0].get("type") == "paragraph", "an ADF listItem starts with a paragraph"
    for child in content:
        assert isinstance(child, Mapping), f"ADF content of {kind} must hold objects"
        if allowed is not None:
            assert child.get("type") in allowed, f"ADF {child.get('type')!r} cannot be in {kind}"
        _assert_adf_node(child, str(kind))
