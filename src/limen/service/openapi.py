"""The OpenAPI document with a sentence per operation and the errors each one can really answer.

FastAPI's own document titles an operation after its function ("Lock Status")
and, here, listed every error code on every operation.  `document(app)` keeps
its schemas and paths and rewrites each operation's summary (the docstring's
first line, or `SUMMARIES`), description (the docstring, or the summary's
sentence) and error responses, derived from what the route depends on:

    an owner (session or API token)  → 401, 403 (missing scope or CSRF)
    a step-up (password re-confirmed) → 401, 403
    a paired door screen              → 403 (not paired, or cross-site)
    a rate limit                      → 429 (with Retry-After)
    a path parameter                  → 404 (no such user / code / token …)
    parameters or a body              → 422 (does not match the schema), 400 (a value the lock refuses)
    file uploads                      → 413

plus what only the operation knows (`EXTRA`: 409 for a duplicate name, 423
during a tamper lockdown …).  Every error has the `ErrorBody` shape.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from limen.service import auth

# Operations whose function has no docstring: (summary, description).
SUMMARIES: dict[tuple[str, str], tuple[str, str]] = {
    ("get", "/api/lock"): ("The lock's state", "Lock and door state, mode, lockout (end in the lock's zone), "
                           "tamper lockdown and the relock countdown."),
    ("get", "/api/users"): ("Everyone on the lock", "People with their role, status, credentials, face and schedule; "
                            "names, never templates."),
    ("delete", "/api/users/{user_id}"): ("Remove a person", "Removes the person and crypto-erases their face "
                                         "template; their PINs and codes stop opening the door at once."),
    ("post", "/api/users/{user_id}/pin"): ("Set a person's PIN", "Adds or replaces the PIN (the PIN rules apply; "
                                           "a recent PIN cannot be reused). Needs a step-up."),
    ("post", "/api/credentials/{credential_id}/revoke"): ("Revoke a credential", "The PIN, tag or code stops "
                                                          "opening the door from the next attempt on."),
    ("get", "/api/codes"): ("Temporary and offline codes", "Issued codes with kind, validity and uses (never "
                            "their digits)."),
    ("post", "/api/codes/{code_id}/revoke"): ("Revoke a code", "The code is refused from the next attempt on."),
    ("get", "/api/alarms"): ("The alarms the lock raised", "ALARM records of the audit trail, newest first (the "
                             "console folds them into incidents)."),
    ("get", "/api/tokens"): ("The owner's API tokens", "Name, scopes, creation, expiry and last use (never the "
                             "token itself)."),
    ("delete", "/api/tokens/{token_id}"): ("Revoke an API token", "Whatever uses the token is refused (401) at "
                                           "once."),
}

_FACE_BUSY = "busy: one face is judged at a time and a few wait; try again (Retry-After)"

# What only the operation knows: status → description.
EXTRA: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/api/users"): {409: "a person with this name already exists"},
    ("post", "/api/users/enrol"): {409: "a person with this name already exists (add a face to them with "
                                        "`user_id`)", 423: "the lock is in tamper lockdown", 503: _FACE_BUSY},
    ("post", "/api/users/{user_id}/pin"): {409: "this PIN was used recently or belongs to someone else"},
    ("post", "/api/kiosk/unlock"): {423: "the lock is in tamper lockdown: use the key", 503: _FACE_BUSY},
    ("post", "/api/kiosk/keypad"): {423: "the lock is in tamper lockdown: use the key"},
    ("post", "/api/lock/unlock"): {423: "the lock is in tamper lockdown",
                                   429: "too many remote unlocks for this owner; wait (Retry-After)"},
    ("post", "/api/codes/{code_id}/revoke"): {409: "the code is already revoked"},
    ("post", "/api/credentials/{credential_id}/revoke"): {409: "the credential is already revoked"},
}

_NOT_FOUND = {"user_id": "no such person", "credential_id": "no such credential", "code_id": "no such code",
              "token_id": "no such API token", "kiosk_id": "no such door screen", "finger_id": "no such finger"}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_ERROR_SCHEMA = {"title": "ErrorBody", "type": "object", "required": ["error", "reason"],
                 "properties": {"error": {"type": "string", "description": "stable code, e.g. not_found"},
                                "reason": {"type": "string", "description": "one sentence for people"}}}


def document(app: FastAPI) -> dict[str, Any]:
    """The service's OpenAPI document (built once, then cached on the app like FastAPI's own)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema["paths"] = {p: ops for p, ops in schema["paths"].items() if p.startswith("/api/")}  # pages are not API
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorBody", _ERROR_SCHEMA)
    for route in routing.iter_route_contexts(app.routes):  # included routers flattened, with their prefixes
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(m.lower() for m in route.methods or () if m != "HEAD"):
            operation = schema["paths"].get(route.path_format, {}).get(method)
            if operation is not None:
                _describe(operation, route, method)
    app.openapi_schema = schema
    return schema


def _describe(operation: dict[str, Any], route: routing.RouteContext, method: str) -> None:
    key = (method, str(route.path_format))
    doc = inspect.getdoc(route.endpoint) or ""
    if route.summary:
        summary, description = route.summary, route.description or doc
    elif doc:
        summary, description = _first_sentence(doc), doc
    else:
        summary, description = SUMMARIES.get(key, ("", ""))
    operation["summary"] = summary
    operation["description"] = description or summary
    kept = {code: r for code, r in operation.get("responses", {}).items() if not str(code).startswith(("4", "5"))}
    for status, text in sorted({**errors_of(route), **EXTRA.get(key, {})}.items()):
        kept[str(status)] = {"description": text, "content": {"application/json": {"schema": _ERROR_REF}}}
    operation["responses"] = kept


def _first_sentence(doc: str) -> str:
    """The docstring's first paragraph up to its first full stop, on one line."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return (paragraph[:end] if end > 0 else paragraph).rstrip(".")


def errors_of(route: routing.RouteContext) -> dict[int, str]:
    """The error answers a route can give, from its dependencies and parameters (see the module docstring)."""
    calls = {d.call for d in _walk(route.dependant) if d.call is not None}
    errors: dict[int, str] = {}
    if auth.api_caller in calls:
        errors[401] = "no owner session or API token, or it expired or was revoked"
        errors[403] = "the API token lacks the scope this needs, or the session's CSRF header is missing"
    if auth.stepped_up in calls:
        errors[403] = "confirm with your password first (POST /api/step-up), or the CSRF header is missing"
    if auth.kiosk_allowed in calls:
        errors[403] = "this door screen is not paired, or the request came from another site"
    if auth.unlock_rate in calls or auth.login_rate in calls:
        errors[429] = "too many attempts from this client; wait the Retry-After seconds"
    dependant = route.dependant
    for param in dependant.path_params:
        errors[404] = _NOT_FOUND.get(param.name, "not found")
    if dependant.path_params or dependant.query_params or dependant.body_params:
        errors[422] = "the request does not match the schema (types, ranges, unknown fields)"
        errors[400] = "a value the lock refuses (the reason says which and why)"
    if any("UploadFile" in repr(p.field_info.annotation) for p in dependant.body_params):
        errors[413] = "an upload is larger than the lock accepts"
    return errors


def _walk(dependant: Dependant) -> list[Dependant]:
    found = [dependant]
    for sub in dependant.dependencies:
        found += _walk(sub)
    return found
