"""/api/schema/ describes API.md: every endpoint, body, response and error status, with
examples that validate against their own schemas, and the Bearer scheme."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from scoreboard_project.errors import ApiError

# API.md sections 1-4 and 6: (path, method) -> the statuses it documents at least.
EXPECTED = {
    ("/api/scores", "post"): {200, 202, 400, 401, 403, 409, 413, 429, 503},
    ("/api/scores/batch", "post"): {200, 400, 401, 403, 413, 503},
    ("/api/scoreboard", "get"): {200, 503},
    ("/api/auth/register", "post"): {201, 400, 403, 413, 429, 503},
    ("/api/auth/token", "post"): {200, 400, 401, 403, 413, 429, 503},
    ("/api/auth/token/refresh", "post"): {200, 400, 401, 413, 503},
    ("/api/auth/logout", "post"): {204, 401, 413, 503},
    ("/api/auth/ws-ticket", "post"): {200, 401, 413, 429, 503},
    ("/healthz", "get"): {200},
    ("/readyz", "get"): {200, 503},
}
# API.md section 5.
SECTION_5 = {
    400: {"INVALID_ACTION"},
    401: {"UNAUTHORIZED"},
    403: {"FORBIDDEN", "ACCOUNT_SUSPENDED"},
    404: {"NOT_FOUND"},
    405: {"METHOD_NOT_ALLOWED"},
    409: {"DUPLICATE_ACTION"},
    413: {"PAYLOAD_TOO_LARGE"},
    429: {"RATE_LIMIT_EXCEEDED"},
    503: {"SERVICE_UNAVAILABLE"},
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client(HTTP_HOST="127.0.0.1").get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(node, schema):
    """An OpenAPI 3.0 schema as plain JSON Schema: $refs inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [resolve(item, schema) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        return resolve(schema["components"]["schemas"][name], schema)
    out = {key: resolve(value, schema) for key, value in node.items() if key not in ("nullable", "example")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def validate(instance, openapi_schema, schema):
    jsonschema.Draft7Validator(
        resolve(openapi_schema, schema), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    ).validate(instance)


def test_the_schema_is_openapi_3_with_every_endpoint_and_status_of_the_contract(schema):
    assert schema["openapi"].startswith("3.")
    documented = {(path, method): operation for path, method, operation in operations(schema)}
    for (path, method), statuses in EXPECTED.items():
        assert (path, method) in documented, f"{method.upper()} {path} is not in the schema"
        have = {int(status) for status in documented[(path, method)]["responses"]}
        assert statuses <= have, f"{method.upper()} {path} lacks {sorted(statuses - have)}"


def test_every_error_response_has_the_error_shape_and_examples_of_its_codes(schema):
    seen: dict[int, set[str]] = {}
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method, status)
            codes = {example["value"]["error_code"] for example in media["examples"].values()}
            assert codes and codes <= SECTION_5[int(status)], (path, method, status, codes)
            seen.setdefault(int(status), set()).update(codes)
    # Every status of section 5 is on some operation, but 404 and 405, which answer the paths
    # and methods the document does not list: those (and all others) are reusable responses.
    assert set(SECTION_5) - {404, 405} <= set(seen)
    reusable = schema["components"]["responses"].values()
    for status, codes in SECTION_5.items():
        examples = [response["content"]["application/json"]["examples"].values() for response in reusable]
        assert any({example["value"]["error_code"] for example in group} == codes for group in examples), (
            status
        )


def test_the_error_schema_lists_every_error_code_the_service_has(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"success", "error_code", "message"}
    assert error["properties"]["success"]["enum"] == [False]
    codes = set(error["properties"]["error_code"]["enum"])
    assert set().union(*SECTION_5.values()) <= codes

    def every(cls):
        yield cls
        for sub in cls.__subclasses__():
            yield from every(sub)

    assert {cls.code for cls in every(ApiError)} <= codes


def test_error_headers_are_documented(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        if "401" in responses:
            header = responses["401"]["headers"]["WWW-Authenticate"]
            assert header["required"] and header["schema"]["enum"] == ["Bearer"], (path, method)
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["required"], (path, method)
    score = schema["paths"]["/api/scores"]["post"]["responses"]
    assert {"Idempotent-Replayed", "RateLimit", "RateLimit-Policy"} <= set(score["200"]["headers"])


def test_the_bearer_scheme_and_who_needs_it(schema):
    assert schema["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["BearerAuth"]["description"],
    }
    security = {(path, method): operation.get("security") for path, method, operation in operations(schema)}
    for needs_token in [("/api/scores", "post"), ("/api/scores/batch", "post"), ("/api/auth/logout", "post")]:
        assert security[needs_token] == [{"BearerAuth": []}], needs_token
    assert security[("/api/auth/ws-ticket", "post")] == [{"BearerAuth": []}, {}]  # optional
    for public in [
        ("/api/scoreboard", "get"),
        ("/api/auth/register", "post"),
        ("/api/auth/token", "post"),
        ("/api/auth/token/refresh", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert not security[public], public


def test_request_bodies_match_the_contract(schema):
    components = schema["components"]["schemas"]

    def body(path):
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return components[ref.split("/")[-1]]

    score = body("/api/scores")
    assert set(score["required"]) == {"action_id", "action_type", "points"}
    assert set(score["properties"]) == {"action_id", "action_type", "points", "client_timestamp", "signature"}
    assert score["properties"]["points"]["type"] == "integer"
    assert score["properties"]["action_id"]["format"] == "uuid"
    assert set(body("/api/auth/register")["required"]) == {"username", "password"}
    assert set(body("/api/auth/token")["required"]) == {"username", "password"}
    assert body("/api/auth/token/refresh")["required"] == ["refresh"]
    assert "requestBody" not in schema["paths"]["/api/auth/logout"]["post"]
    board = components["ScoreboardOutput"]
    assert set(board["required"]) == {"leaderboard", "last_updated", "total_players"}
    assert set(components["BoardEntryOutput"]["required"]) == {
        "rank",
        "user_id",
        "username",
        "score",
        "last_updated",
    }
    assert set(components["TokenPairOutput"]["required"]) == {"access", "refresh", "token_type", "expires_in"}


def test_every_operation_and_body_has_examples(schema):
    for path, method, operation in operations(schema):
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"].get("examples"), (path, method)
        for status, response in operation["responses"].items():
            if "content" in response:
                assert response["content"]["application/json"].get("examples"), (path, method, status)


def test_examples_validate_against_their_schemas(schema):
    media_types = []
    for *_, operation in operations(schema):
        media_types.append(operation.get("requestBody", {}).get("content", {}).get("application/json"))
        media_types += [
            response.get("content", {}).get("application/json")
            for response in operation["responses"].values()
        ]
    media_types += [
        response["content"]["application/json"] for response in schema["components"]["responses"].values()
    ]
    checked = 0
    for media in filter(None, media_types):
        for example in media.get("examples", {}).values():
            validate(example["value"], media["schema"], schema)
            checked += 1
    for component in schema["components"]["schemas"].values():
        if "example" in component:
            validate(component["example"], component, schema)
            checked += 1
    assert checked >= 40


def test_the_validator_used_above_does_refuse_a_wrong_example(schema):
    """The check above can fail: a broken example does not validate."""
    media = schema["paths"]["/api/scores"]["post"]["responses"]["200"]["content"]["application/json"]
    broken = copy.deepcopy(next(iter(media["examples"].values()))["value"])
    broken["rank"] = "7"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, media["schema"], schema)
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"success": False, "error_code": "NOPE", "message": "x"},
            {"$ref": "#/components/schemas/Error"},
            schema,
        )


def test_websocket_messages_are_described(schema):
    components = schema["components"]["schemas"]
    for name, kind in [
        ("WsLeaderboardUpdate", "LEADERBOARD_UPDATE"),
        ("WsScoreUpdate", "SCORE_UPDATE"),
        ("WsPong", "PONG"),
        ("WsError", "ERROR"),
        ("WsPing", "PING"),
        ("WsSubscribe", "SUBSCRIBE"),
    ]:
        assert components[name]["properties"]["type"]["enum"] == [kind]
    assert "/ws/scoreboard" in schema["info"]["description"]
    for code in ("4401", "4403", "4429", "1009"):
        assert code in schema["info"]["description"]


def test_the_schema_endpoint_and_docs_need_no_token(api):
    assert api.get("/api/schema/", HTTP_HOST="127.0.0.1").status_code == 200
