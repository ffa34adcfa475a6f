"""OpenAPI conformance checking for tests: every /api/v4 exchange is checked against Mattermost's spec.

`openapi_middleware(state)` is the outermost middleware when `Sandbox(validate=True)`. For each request
under `/api/v4/` it finds the spec operation, then checks

- the request: path parameters, query parameters and the JSON body (openapi-core 0.23). A request the
  spec calls invalid only counts when the sandbox *accepted* it (status < 400): a test that sends a bad
  body on purpose and gets a 4xx back is fine, while a sandbox that accepts what the spec forbids (or a
  bot that sends it) is caught.
- the response: a declared status must match its declared content (media type and schema). An error
  status the operation does not declare (the spec lists errors incompletely) must still be the real
  server's error shape (`components/responses/<Name>`, an AppError). A success status the operation
  does not declare (200 where the spec says 201) is a violation.
- the route: an /api/v4 route the spec does not describe must answer 404 (the sandbox's unknown-route
  reply) unless it is in `UNDESCRIBED_ROUTES`.

Violations are appended to `state.spec_violations` and logged; `tests/conftest.py`'s `sandbox` fixture
fails the test at teardown when there are any (`assert_no_violations`). With `fail_fast=True` the
offending response is replaced by a 599 instead, so the caller sees it immediately.

Where the spec is wrong against the real server, `SPEC_EXCEPTIONS` patches the loaded spec; each entry
carries its proof from mattermost/mattermost. The spec is read and patched once per process.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import yaml
from aiohttp import web
from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import MissingRequestBody
from openapi_core.validation.request.validators import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
)
from openapi_core.validation.response.validators import V30ResponseDataValidator
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The project carries its own copy (sandbox/spec/README.md says where it comes from and under which licence).
DEFAULT_SPEC_PATH = Path(__file__).resolve().parent / "spec" / "mattermost-openapi-v4.yaml"
SPEC_PATH = Path(os.environ.get("MATTERMOST_OPENAPI_SPEC", str(DEFAULT_SPEC_PATH)))

VALIDATED_PREFIX = "/api/v4/"  # everything else (/sandbox/*, /hooks/*, /plugins/*) is not the API

# /api/v4 routes the real server has but the spec does not describe: (method, path regex, why).
UNDESCRIBED_ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/api/v4/websocket", "WebSocket upgrade (api4/websocket.go), not an HTTP operation"),
]

SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})

# The real server's API handlers set exactly this header (server/channels/web/handlers.go ServeHTTP:
# `w.Header().Set("Content-Type", "application/json")`), and clients depend on it: mattermostdriver's
# Client.get only decodes a body when `response.headers['Content-Type'] == 'application/json'`.
JSON_CONTENT_TYPE = "application/json"
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})

# Error statuses an operation may not declare, with the shared response the real server sends for them.
ERROR_RESPONSES: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 413: "TooLarge",
    429: "TooManyRequests", 500: "InternalServerError", 501: "NotImplemented",
}


@dataclass(frozen=True)
class SpecException:
    """One place where the spec disagrees with the real server's code, and how the spec is patched.

    op "replace": put `value` at `pointer` (a JSON pointer into the spec).
    op "move": move what is at `pointer` to `value` (a JSON pointer), e.g. to rename a path.
    """

    id: str
    pointer: str
    op: str
    value: Any
    spec_says: str
    server_does: str
    proof: str


SPEC_EXCEPTIONS: list[SpecException] = [
    SpecException(
        id="user-timezone-strings",
        pointer="/components/schemas/Timezone/properties/useAutomaticTimezone",
        op="replace",
        value={"type": "string", "enum": ["true", "false", ""],
               "description": 'The string "true" or "false" (model.User.Timezone is a map[string]string).'},
        spec_says="Timezone.useAutomaticTimezone is a boolean",
        server_does='sends the string "true"/"false": every value of User.timezone is a string',
        proof="mattermost/mattermost server/public/model/user.go: `type User struct { ... Timezone StringMap "
              "`json:\"timezone\"` ... }` (StringMap = map[string]string); "
              "server/public/shared/timezones/timezones.go DefaultUserTimezone(): "
              "`defaultTimezone[\"useAutomaticTimezone\"] = \"true\"`.",
    ),
    SpecException(
        id="rate-limit-text-plain",
        pointer="/components/responses/TooManyRequests/content",
        op="replace",
        value={"text/plain": {"schema": {"type": "string"}}},
        spec_says="429 answers carry an AppError as application/json",
        server_does='answers 429 with text/plain "limit exceeded" (http.Error) plus X-RateLimit-* and '
                    "Retry-After headers",
        proof="mattermost/mattermost server/channels/app/ratelimit.go RateLimiter.RateLimitWriter: "
              "`setRateLimitHeaders(w, context); if limited { http.Error(w, \"limit exceeded\", "
              "http.StatusTooManyRequests) }` (http.Error sets Content-Type text/plain; charset=utf-8).",
    ),
    SpecException(
        id="team-policy-id-null",
        pointer="/components/schemas/Team/properties/policy_id",
        op="replace",
        value={"type": "string", "nullable": True},
        spec_says="Team.policy_id is a string",
        server_does="sends null when the team has no data-retention policy (a nil *string without omitempty)",
        proof="mattermost/mattermost server/public/model/team.go: `type Team struct { ... SchemeId *string "
              "`json:\"scheme_id\"`; GroupConstrained *bool `json:\"group_constrained\"`; PolicyID *string "
              "`json:\"policy_id\"` ... }`.",
    ),
    SpecException(
        id="login-200",
        pointer="/paths/~1api~1v4~1users~1login/post/responses/201",
        op="move",
        value="/paths/~1api~1v4~1users~1login/post/responses/200",
        spec_says="POST /api/v4/users/login answers 201",
        server_does="answers 200 (it never calls WriteHeader) with the User and the session in the Token header",
        proof="mattermost/mattermost server/channels/api4/user.go login(): ends with "
              "`user.Sanitize(map[string]bool{}); auditRec.Success(); json.NewEncoder(w).Encode(user)` "
              "and no w.WriteHeader(http.StatusCreated) (compare createUser, which has it).",
    ),
    SpecException(
        id="login-body-string-map",
        pointer="/paths/~1api~1v4~1users~1login/post/requestBody/content/application~1json/schema",
        op="replace",
        value={"type": "object", "properties": {
            name: {"type": "string", "nullable": True}
            for name in ("id", "login_id", "password", "token", "device_id", "ldap_only")}},
        spec_says="the login body's `token` is a string and `ldap_only` a boolean",
        server_does="decodes the body as a map of strings: null is read as \"\" (mattermostdriver sends "
                    "`\"token\": null` when there is no MFA code) and ldap_only is compared with the string \"true\"",
        proof="mattermost/mattermost server/channels/api4/user.go login(): `props := model.MapFromJSON(r.Body); "
              "... mfaToken := props[\"token\"]; ... ldapOnly := props[\"ldap_only\"] == \"true\"`; "
              "server/public/model/utils.go MapFromJSON: `var objmap map[string]string; "
              "json.NewDecoder(data).Decode(&objmap)`.",
    ),
    SpecException(
        id="logout-200",
        pointer="/paths/~1api~1v4~1users~1logout/post/responses/201",
        op="move",
        value="/paths/~1api~1v4~1users~1logout/post/responses/200",
        spec_says="POST /api/v4/users/logout answers 201",
        server_does='answers 200 {"status": "OK"}',
        proof="mattermost/mattermost server/channels/api4/user.go Logout(): `c.RemoveSessionCookie(w, r); ... "
              "auditRec.Success(); ReturnStatusOK(w)`; ReturnStatusOK (server/channels/web/web.go) only "
              "writes the body {\"status\":\"OK\"} (`w.Write([]byte(model.MapToJSON(m)))`), no WriteHeader.",
    ),
    SpecException(
        id="create-user-access-token-200",
        pointer="/paths/~1api~1v4~1users~1{user_id}~1tokens/post/responses/201",
        op="move",
        value="/paths/~1api~1v4~1users~1{user_id}~1tokens/post/responses/200",
        spec_says="POST /api/v4/users/{user_id}/tokens answers 201",
        server_does="answers 200 with the UserAccessToken (token included)",
        proof="mattermost/mattermost server/channels/api4/user.go createUserAccessToken(): "
              "`token, err := c.App.CreateUserAccessToken(&accessToken) ... json.NewEncoder(w).Encode(token)` "
              "with no w.WriteHeader call.",
    ),
    SpecException(
        id="sidebar-categories-object",
        pointer="/paths/~1api~1v4~1users~1{user_id}~1teams~1{team_id}~1channels~1categories/get/responses/200"
                "/content/application~1json/schema",
        op="replace",
        value={"$ref": "#/components/schemas/OrderedSidebarCategories"},
        spec_says="GET .../channels/categories answers an array of OrderedSidebarCategories",
        server_does='answers one OrderedSidebarCategories object {"categories": [...], "order": [...]}',
        proof="mattermost/mattermost server/channels/api4/channel_category.go getCategoriesForTeamForUser(): "
              "`categories, appErr := c.App.GetSidebarCategoriesForTeamForUser(...); categoriesJSON, err := "
              "json.Marshal(categories); w.Write(categoriesJSON)`; server/channels/app/channel_category.go: "
              "`func (a *App) GetSidebarCategoriesForTeamForUser(...) (*model.OrderedSidebarCategories, "
              "*model.AppError)`.",
    ),
    SpecException(
        id="sidebar-categories-bulk-update-array",
        pointer="/paths/~1api~1v4~1users~1{user_id}~1teams~1{team_id}~1channels~1categories/put/responses/200"
                "/content/application~1json/schema",
        op="replace",
        value={"type": "array", "items": {"$ref": "#/components/schemas/SidebarCategoryWithChannels"}},
        spec_says="PUT .../channels/categories (bulk) answers one SidebarCategory",
        server_does="answers the array of the updated categories, each with its channel_ids",
        proof="mattermost/mattermost server/channels/api4/channel_category.go updateCategoriesForTeamForUser(): "
              "`categories, appErr := c.App.UpdateSidebarCategories(c.AppContext, c.Params.UserId, "
              "c.Params.TeamId, categoriesUpdateRequest) ... categoriesJSON, err := json.Marshal(categories); "
              "w.Write(categoriesJSON)`; server/channels/app/channel_category.go: `func (a *App) "
              "UpdateSidebarCategories(...) ([]*model.SidebarCategoryWithChannels, *model.AppError)`.",
    ),
    SpecException(
        id="update-post-props-object",
        pointer="/paths/~1api~1v4~1posts~1{post_id}/put/requestBody/content/application~1json/schema"
                "/properties/props",
        op="replace",
        value={"type": "object", "description": "A general JSON property bag (model.StringInterface)"},
        spec_says="the body of PUT /api/v4/posts/{post_id} has `props` as a string",
        server_does="decodes the body into model.Post, whose props is a JSON object",
        proof="mattermost/mattermost server/public/model/post.go: `type Post struct { ... Props StringInterface "
              "`json:\"props\"` ... }` (StringInterface = map[string]any); server/channels/api4/post.go "
              "updatePost decodes the body with `json.NewDecoder(r.Body).Decode(&post)` into a model.Post.",
    ),
    SpecException(
        id="patch-post-props-object",
        pointer="/paths/~1api~1v4~1posts~1{post_id}~1patch/put/requestBody/content/application~1json/schema"
                "/properties/props",
        op="replace",
        value={"type": "object", "description": "A general JSON property bag (model.StringInterface)"},
        spec_says="the body of PUT /api/v4/posts/{post_id}/patch has `props` as a string",
        server_does="decodes the body into model.PostPatch, whose props is a JSON object",
        proof="mattermost/mattermost server/public/model/post.go: `type PostPatch struct { IsPinned *bool; "
              "Message *string; Props *StringInterface `json:\"props\"`; FileIds *StringArray; HasReactions *bool }`.",
    ),
    SpecException(
        id="oauth-app-description-optional",
        pointer="/paths/~1api~1v4~1oauth~1apps/post/requestBody/content/application~1json/schema/required",
        op="replace",
        value=["name", "callback_urls", "homepage"],
        spec_says="POST /api/v4/oauth/apps requires `description`",
        server_does="registers an app without a description (only its length is limited, 512 runes)",
        proof="mattermost/mattermost server/channels/api4/oauth.go createOAuthApp decodes the body into "
              "model.OAuthApp and calls App.CreateOAuthApp with no field check of its own; "
              "server/public/model/oauth.go OAuthApp.IsValid requires Name, CallbackUrls and Homepage and "
              "checks the description only with `if utf8.RuneCountInString(a.Description) > 512`.",
    ),
    SpecException(
        id="get-file-200",
        pointer="/paths/~1api~1v4~1files~1{file_id}/get/responses",
        op="replace",
        value={"200": {"description": "The file's content, typed by its FileInfo's mime type",
                       "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
               **{code: {"$ref": f"#/components/responses/{name}"} for code, name in (
                   ("400", "BadRequest"), ("401", "Unauthorized"), ("403", "Forbidden"), ("404", "NotFound"),
                   ("501", "NotImplemented"))}},
        spec_says="GET /api/v4/files/{file_id} declares no success response at all",
        server_does="answers 200 with the file's bytes, Content-Type from the FileInfo (application/octet-stream "
                    "when unknown, text/plain for HTML and scripts)",
        proof="mattermost/mattermost server/channels/api4/file.go getFile(): `fileReader, err := "
              "c.App.FileReader(info.Path) ... web.WriteFileResponse(info.Name, info.MimeType, info.Size, ...)`; "
              "server/platform/shared/web/file.go (WriteFileResponse -> setHeaders, http.ServeContent).",
    ),
    SpecException(
        id="upload-client-ids-null",
        pointer="/paths/~1api~1v4~1files/post/responses/201/content/application~1json/schema/properties/client_ids",
        op="replace",
        value={"type": "array", "items": {"type": "string"}, "nullable": True},
        spec_says="the upload answer's client_ids is an array",
        server_does="sends null for a raw-body upload (`?channel_id=&filename=`) without `client_id`",
        proof="mattermost/mattermost server/public/model/file.go: `type FileUploadResponse struct { FileInfos "
              "[]*FileInfo `json:\"file_infos\"`; ClientIds []string `json:\"client_ids\"` }` (no omitempty); "
              "server/channels/api4/file.go uploadFileSimple(): `fileUploadResponse := "
              "&model.FileUploadResponse{FileInfos: []*model.FileInfo{info}}; if clientId != \"\" { "
              "fileUploadResponse.ClientIds = []string{clientId} }`.",
    ),
    SpecException(
        id="upload-raw-body",
        pointer="/paths/~1api~1v4~1files/post/requestBody/content",
        op="replace",
        value={"multipart/form-data": {"schema": {"type": "object", "properties": {
                   "files": {"type": "string", "format": "binary"}, "channel_id": {"type": "string"},
                   "client_ids": {"type": "string"}}}},
               "*/*": {"schema": {"type": "string", "format": "binary"}}},
        spec_says="POST /api/v4/files takes only multipart/form-data (its description says otherwise)",
        server_does="takes any other body as the file itself, named by `?channel_id=&filename=`",
        proof="mattermost/mattermost server/channels/api4/file.go uploadFileStream(): `_, err := "
              "parseMultipartRequestHeader(r); switch err { case nil: uploadFileMultipart(...); case "
              "http.ErrNotMultipart: uploadFileSimple(c, r, timestamp) ... }`.",
    ),
    SpecException(
        id="autocomplete-suggestions-prefix",
        pointer="/paths/~1teams~1{team_id}~1commands~1autocomplete_suggestions",
        op="move",
        value="/paths/~1api~1v4~1teams~1{team_id}~1commands~1autocomplete_suggestions",
        spec_says="the path is /teams/{team_id}/commands/autocomplete_suggestions (no /api/v4 prefix)",
        server_does="serves it under /api/v4 like every other API route",
        proof="mattermost/mattermost server/channels/api4/command.go InitCommand: "
              "`api.BaseRoutes.Team.Handle(\"/commands/autocomplete_suggestions\", "
              "api.APISessionRequired(listCommandAutocompleteSuggestions)).Methods(http.MethodGet)`; "
              "BaseRoutes.Team is /api/v4/teams/{team_id} (api4/api.go).",
    ),
    SpecException(
        id="group-remote-id-null",
        pointer="/components/schemas/Group/properties/remote_id",
        op="replace",
        value={"type": "string", "nullable": True},
        spec_says="Group.remote_id is a string",
        server_does="sends null for a custom group (a nil *string without omitempty)",
        proof="mattermost/mattermost server/public/model/group.go: `type Group struct { ... RemoteId *string "
              "`json:\"remote_id\"` ... }`; a custom group has no remote id (api4/group.go createGroup refuses "
              "one with api.custom_groups.no_remote_id).",
    ),
    SpecException(
        id="create-group-flat-body",
        pointer="/paths/~1api~1v4~1groups/post/requestBody/content/application~1json/schema",
        op="replace",
        value={"type": "object", "required": ["display_name", "source", "allow_reference"], "properties": {
            "name": {"type": "string"}, "display_name": {"type": "string"}, "description": {"type": "string"},
            "source": {"type": "string"}, "allow_reference": {"type": "boolean"},
            "user_ids": {"type": "array", "items": {"type": "string"}}}},
        spec_says="POST /api/v4/groups takes {\"group\": {...}, \"user_ids\": [...]}",
        server_does="decodes one flat object: the group's fields and `user_ids` side by side",
        proof="mattermost/mattermost server/channels/api4/group.go createGroup(): `var group "
              "*model.GroupWithUserIds; json.NewDecoder(r.Body).Decode(&group)`; server/public/model/group.go: "
              "`type GroupWithUserIds struct { Group; UserIds []string `json:\"user_ids\"` }` (Group embedded).",
    ),
    SpecException(
        id="create-group-201-body",
        pointer="/paths/~1api~1v4~1groups/post/responses/201",
        op="replace",
        value={"description": "The created group.",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Group"}}}},
        spec_says="POST /api/v4/groups answers 201 without a body",
        server_does="answers 201 with the created Group",
        proof="mattermost/mattermost server/channels/api4/group.go createGroup(): `newGroup, appErr := "
              "c.App.CreateGroupWithUserIds(group); js, err := json.Marshal(newGroup); "
              "w.WriteHeader(http.StatusCreated); w.Write(js)`.",
    ),
    SpecException(
        id="get-groups-optional-team",
        pointer="/paths/~1api~1v4~1groups/get/parameters/4/required",
        op="replace",
        value=False,
        spec_says="GET /api/v4/groups requires not_associated_to_team (and not_associated_to_channel)",
        server_does="takes both as optional filters",
        proof="mattermost/mattermost server/channels/api4/group.go getGroups(): `if id := "
              "c.Params.NotAssociatedToTeam; model.IsValidId(id) { teamID = id }` and likewise for "
              "NotAssociatedToChannel; neither is required (the spec's own description says OR).",
    ),
    SpecException(
        id="get-groups-optional-channel",
        pointer="/paths/~1api~1v4~1groups/get/parameters/5/required",
        op="replace",
        value=False,
        spec_says="GET /api/v4/groups requires not_associated_to_channel",
        server_does="takes it as an optional filter",
        proof="mattermost/mattermost server/channels/api4/group.go getGroups(): `if id := "
              "c.Params.NotAssociatedToChannel; model.IsValidId(id) { NotAssociatedToChannelID = id }`.",
    ),
    SpecException(
        id="add-group-members-body",
        pointer="/paths/~1api~1v4~1groups~1{group_id}~1members/post/responses/200/content/application~1json/schema",
        op="replace",
        value={"type": "array", "items": {"type": "object", "properties": {
            "group_id": {"type": "string"}, "user_id": {"type": "string"},
            "create_at": {"type": "integer"}, "delete_at": {"type": "integer"}}}},
        spec_says="POST /api/v4/groups/{group_id}/members answers StatusOK",
        server_does="answers the list of model.GroupMember it added",
        proof="mattermost/mattermost server/channels/api4/group.go addGroupMembers(): `members, appErr := "
              "c.App.UpsertGroupMembers(c.Params.GroupId, newMembers.UserIds); b, err := json.Marshal(members)` "
              "(UpsertGroupMembers returns []*model.GroupMember: group_id, user_id, create_at, delete_at).",
    ),
    SpecException(
        id="delete-group-members-body",
        pointer="/paths/~1api~1v4~1groups~1{group_id}~1members/delete/responses/200/content/application~1json/schema",
        op="replace",
        value={"type": "array", "items": {"type": "object", "properties": {
            "group_id": {"type": "string"}, "user_id": {"type": "string"},
            "create_at": {"type": "integer"}, "delete_at": {"type": "integer"}}}},
        spec_says="DELETE /api/v4/groups/{group_id}/members answers StatusOK",
        server_does="answers the list of model.GroupMember it removed",
        proof="mattermost/mattermost server/channels/api4/group.go deleteGroupMembers(): `members, appErr := "
              "c.App.DeleteGroupMembers(c.Params.GroupId, deleteBody.UserIds); b, err := json.Marshal(members)`.",
    ),
]


# -- the violations ----------------------------------------------------------------------------------

@dataclass
class Violation:
    kind: str  # "request", "response", "header", "route", "crash"
    method: str
    path: str
    status: int
    operation: str  # "GET /api/v4/users/{user_id}" or "" when the route is not in the spec
    message: str

    def __str__(self) -> str:
        where = f" [{self.operation}]" if self.operation else ""
        return f"{self.kind}: {self.method} {self.path} -> {self.status}{where}: {self.message}"


class SpecViolationError(AssertionError):
    """The sandbox and the OpenAPI file disagreed during a test."""


def violations_of(state: Any) -> list[Violation]:
    found: list[Violation] | None = getattr(state, "spec_violations", None)
    if found is None:
        found = []
        state.spec_violations = found
    return found


def format_violations(violations: Iterable[Violation]) -> str:
    """The violations, those with the same kind, operation, status and message counted once."""
    items = list(violations)
    groups: dict[tuple[str, str, int, str], list[Violation]] = {}
    for v in items:
        if v.kind == "header":  # one cause (how the sandbox writes JSON), however many routes show it
            key = (v.kind, "", 0, v.message)
        else:
            key = (v.kind, v.operation or f"{v.method} {v.path}", v.status, v.message)
        groups.setdefault(key, []).append(v)
    lines = [f"{len(items)} OpenAPI violation(s) (see sandbox/validation.py, sandbox/SPEC_EXCEPTIONS.md):"]
    for same in groups.values():
        count = f" (x{len(same)})" if len(same) > 1 else ""
        lines.append(f"  - {same[0]}{count}")
    return "\n".join(lines)


def assert_no_violations(state: Any) -> None:
    found = violations_of(state)
    if found:
        raise SpecViolationError(format_violations(found))


# -- the spec, loaded once ---------------------------------------------------------------------------

def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _resolve_parent(document: dict[str, Any], pointer: str) -> tuple[Any, str]:
    tokens = [_unescape(t) for t in pointer.lstrip("/").split("/")]
    node: Any = document
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node, tokens[-1]


def apply_exceptions(document: dict[str, Any], exceptions: Iterable[SpecException]) -> None:
    for exc in exceptions:
        parent, key = _resolve_parent(document, exc.pointer)
        if key not in parent:
            raise KeyError(f"SPEC_EXCEPTIONS[{exc.id}]: {exc.pointer} is not in the spec")
        if exc.op == "replace":
            parent[key] = exc.value
        elif exc.op == "move":
            target_parent, target_key = _resolve_parent(document, exc.value)
            target_parent[target_key] = parent.pop(key)
        else:
            raise ValueError(f"SPEC_EXCEPTIONS[{exc.id}]: unknown op {exc.op!r}")


@dataclass
class _Route:
    template: str
    regex: re.Pattern[str]
    variables: int
    literal_len: int
    item: SchemaPath
    methods: frozenset[str]


@dataclass
class Operation:
    template: str
    method: str
    path_item: SchemaPath
    operation: SchemaPath
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.template}"


class _SharedFormatChecker(SchemaValidatorsFactory):
    """openapi-core deep-copies its format checker for every schema it checks (a quarter of the time);
    nothing here adds formats, so one shared checker is enough."""

    def get_format_checker(self, format_validators: Any = None, extra_format_validators: Any = None) -> Any:
        if format_validators is None and extra_format_validators is None:
            return self.format_checker
        return super().get_format_checker(format_validators, extra_format_validators)


class OperationNotInSpec(LookupError):
    pass


class Spec:
    """The patched spec with a fast router and openapi-core's validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.root = SchemaPath.from_dict(document)
        write, read = _SharedFormatChecker(OAS30WriteValidator), _SharedFormatChecker(OAS30ReadValidator)
        self.params = V30RequestParametersValidator(self.root, schema_validators_factory=write)
        self.body = V30RequestBodyValidator(self.root, schema_validators_factory=write)
        self.data = V30ResponseDataValidator(self.root, schema_validators_factory=read)
        self.routes: list[_Route] = []
        for template, item in (self.root / "paths").str_items():
            names = re.findall(r"{([^}]+)}", template)
            pattern = "".join(
                f"(?P<{_group(part[1:-1])}>[^/]+)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"({[^}]+})", template) if part
            )
            methods = frozenset(m for m in document["paths"][template]
                                if m in {"get", "put", "post", "delete", "patch"})
            self.routes.append(_Route(template, re.compile(pattern), len(names),
                                      len(re.sub(r"{[^}]+}", "", template)), item, methods))
        # The most concrete template first: fewer variables, then more literal characters.
        self.routes.sort(key=lambda r: (r.variables, -r.literal_len))
        self._operations: dict[tuple[str, str], SchemaPath] = {}
        self._error_responses = {
            status: self.root / "components" / "responses" / name for status, name in ERROR_RESPONSES.items()
        }
        self._app_error = self.root / "components" / "responses" / "InternalServerError"

    def find(self, method: str, path: str) -> Operation:
        method = method.lower()
        path_matched = False
        for route in self.routes:
            match = route.regex.fullmatch(path)
            if match is None:
                continue
            path_matched = True
            if method not in route.methods:
                continue
            key = (route.template, method)
            operation = self._operations.get(key)
            if operation is None:
                operation = self._operations[key] = route.item / method
            variables = {_ungroup(k): v for k, v in match.groupdict().items()}
            return Operation(route.template, method, route.item, operation, variables)
        raise OperationNotInSpec("method not in spec for this path" if path_matched else "path not in spec")

    # -- checks, each returning a list of messages ------------------------------------------------
    def request_errors(self, op: Operation, query: Any, headers: Any, cookies: Any,
                       body: bytes | None, content_type: str) -> list[str]:
        errors: list[str] = []
        parameters = RequestParameters(query=query, header=headers, cookie=cookies, path=op.variables)
        errors += [describe(e) for e in self.params._iter_parameters_errors(
            _RequestShim(parameters), op.operation, op.path_item)]
        if body is None:  # a streamed form, not read
            return errors
        try:
            self.body._get_body(body or None, content_type, op.operation)
        except MissingRequestBody:  # optional and absent (a required one raises something else)
            pass
        except Exception as exc:  # RequestBodyValidationError and its causes
            errors.append(describe(exc))
        return errors

    def response_errors(self, op: Operation | None, status: int, data: bytes, content_type: str) -> list[str]:
        declared: SchemaPath | None = None
        if op is not None:
            try:
                declared = self.data._find_operation_response(str(status), op.operation)
            except ResponseNotFound:
                declared = None
        if declared is None:
            if status < 400:
                declared_statuses = ", ".join(sorted(k for k in (op.operation / "responses").keys())) if op else ""
                return [f"status {status} is not declared (declared: {declared_statuses})"]
            declared = self._error_responses.get(status, self._app_error)
        try:
            self.data._get_data(data, content_type, declared)
        except Exception as exc:  # DataValidationError and its causes
            return [describe(exc)]
        return []


class _RequestShim:
    """What `_iter_parameters_errors` reads from a request."""

    def __init__(self, parameters: RequestParameters) -> None:
        self.parameters = parameters


def _group(name: str) -> str:
    return "v_" + re.sub(r"\W", lambda m: f"_{ord(m.group()):x}_", name)


def _ungroup(group: str) -> str:
    return re.sub(r"_([0-9a-f]+)_", lambda m: chr(int(m.group(1), 16)), group[2:])


def describe(exc: BaseException) -> str:
    """One line for an openapi-core error: its kind, then each schema error with its JSON path."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    schema_errors = [e for link in chain for e in (getattr(link, "schema_errors", None) or ())]
    if schema_errors:
        details = "; ".join(f"{e.json_path}: {_short(e.message)}" for e in schema_errors)
        return f"{type(exc).__name__}: {details}"
    parts = []
    for link in chain:
        text, name = str(link), type(link).__name__
        parts.append(f"{name}: {_short(text)}" if text and text != name else name)
    return "; ".join(parts)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@cache
def load_spec(path: str | None = None) -> Spec:
    """Read, patch and index the spec once per process (≈0.3 s)."""
    started = time.perf_counter()
    with open(path or SPEC_PATH, encoding="utf-8") as handle:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    apply_exceptions(document, SPEC_EXCEPTIONS)
    spec = Spec(document)
    log.debug("OpenAPI spec loaded in %.3fs", time.perf_counter() - started)
    return spec


# -- the middleware ----------------------------------------------------------------------------------

_UNDESCRIBED = [(m, re.compile(p)) for m, p, _ in UNDESCRIBED_ROUTES]


def _undescribed(method: str, path: str) -> bool:
    return any(m in (method, "*") and rx.fullmatch(path) for m, rx in _UNDESCRIBED)


def openapi_middleware(state: Any, *, fail_fast: bool = False, spec_path: str | None = None) -> Any:
    """An aiohttp middleware checking /api/v4 exchanges against the spec; see the module docstring."""
    spec = load_spec(spec_path)
    recorded = violations_of(state)

    def record(violation: Violation) -> None:
        recorded.append(violation)
        log.error("OpenAPI violation: %s", violation)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        method = request.method
        if not path.startswith(VALIDATED_PREFIX) or method in SKIPPED_METHODS or _undescribed(method, path):
            return await handler(request)
        try:
            op: Operation | None = spec.find(method, path)
        except OperationNotInSpec:
            op = None
        # Read (and so cache for the handler) only bodies that are not streamed forms: a multipart
        # upload must stay unread for request.post()/multipart(); its body is not checked.
        streamed = request.content_type in FORM_TYPES
        body = await request.read() if request.body_exists and not streamed else b""
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            record(Violation("crash", method, path, 500, op.label if op else "",
                             f"unhandled {type(exc).__name__}: {exc} (the real server answers an AppError)"))
            raise
        found: list[Violation] = []
        status = response.status
        label = op.label if op else ""
        if op is None:
            if status != 404:
                found.append(Violation("route", method, path, status, "",
                                       "this /api/v4 route is not in the spec (add it to UNDESCRIBED_ROUTES "
                                       "with a reason if the real server has it)"))
        elif status < 400:
            for message in spec.request_errors(op, request.query, request.headers, request.cookies,
                                               None if streamed else body, request.content_type):
                found.append(Violation("request", method, path, status, label,
                                       f"accepted although the spec rejects it: {message}"))
        if response.content_type == JSON_CONTENT_TYPE and response.headers.get("Content-Type") != JSON_CONTENT_TYPE:
            found.append(Violation("header", method, path, status, label,
                                   f"Content-Type is {response.headers.get('Content-Type')!r}; the real server "
                                   f"sends exactly {JSON_CONTENT_TYPE!r} (web/handlers.go), and "
                                   "mattermostdriver's Client.get only decodes JSON on an exact match"))
        if status != 304 and (op is not None or status == 404) and isinstance(response, web.Response):
            data = _body_bytes(response)
            if data is not None:
                for message in spec.response_errors(op, status, data, response.content_type or ""):
                    found.append(Violation("response", method, path, status, label, message))
        for violation in found:
            record(violation)
        if found and fail_fast:
            return web.Response(status=599, text=format_violations(found))
        return response

    return middleware


def _body_bytes(response: web.Response) -> bytes | None:
    body = response.body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    # A streamed payload (a file download): not a JSON document, nothing to check.
    value = getattr(body, "_value", None)
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None


_DOC_HEAD = """# Where the OpenAPI file is wrong against the real server

Generated by `python -m sandbox.validation > sandbox/SPEC_EXCEPTIONS.md`; a test keeps it in step with the code.

`sandbox/validation.py` checks every `/api/v4` request and response of the sandbox against
`sandbox/spec/mattermost-openapi-v4.yaml` (Mattermost's official spec, June 2023). Where the spec disagrees
with the real server's Go code, the server wins: `SPEC_EXCEPTIONS` in `sandbox/validation.py` patches
the loaded spec, and each patch is listed here with its proof from `mattermost/mattermost`.

How the checker decides (the module docstring has the details):

- Request (path, query, JSON body): a violation only when the sandbox *accepted* the request (status < 400).
- Response: a declared status must match its declared media type and schema; an undeclared error status
  must still be the server's error shape (`components/responses/<Name>`, an AppError); an undeclared
  success status is a violation.
- `Content-Type` of JSON responses must be exactly `application/json`, as the real server sends it
  (`server/channels/web/handlers.go`: `w.Header().Set("Content-Type", "application/json")`);
  mattermostdriver's `Client.get` only decodes a body on that exact value.
- An `/api/v4` route the spec does not describe must answer 404 unless it is allow-listed below.
- Not checked: security requirements (auth is the sandbox's own tested behaviour), multipart bodies,
  routes outside `/api/v4` (`/sandbox/*`, `/hooks/*`, `/plugins/*`).
"""


def render_markdown() -> str:
    """sandbox/SPEC_EXCEPTIONS.md: the exceptions and the undescribed routes, with their proof."""
    out = [_DOC_HEAD, "## Spec exceptions", ""]
    for e in SPEC_EXCEPTIONS:
        target = f" to `{e.value}`" if e.op == "move" else ""
        out += [f"### `{e.id}`", "",
                f"- Patched: `{e.pointer}` ({e.op}{target})",
                f"- The spec says: {e.spec_says}",
                f"- The server: {e.server_does}",
                f"- Proof: {e.proof}", ""]
    out += ["## /api/v4 routes the spec does not describe (`UNDESCRIBED_ROUTES`)", ""]
    out += [f"- `{method} {pattern}`: {why}" for method, pattern, why in UNDESCRIBED_ROUTES]
    return "\n".join(out) + "\n"


__all__ = [
    "SPEC_EXCEPTIONS", "UNDESCRIBED_ROUTES", "SpecException", "SpecViolationError", "Violation",
    "assert_no_violations", "format_violations", "load_spec", "openapi_middleware", "render_markdown",
    "violations_of",
]


if __name__ == "__main__":
    print(render_markdown(), end="")
