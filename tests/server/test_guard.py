"""The guard in process: Host allow-list, Origin check, JSON-only bodies, error shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from serverkit import assert_error, chat_body, running

from terminus.cli.main import cli
from terminus.errors import InvalidParameterError
from terminus.server import ServerSettings, resolve_allowed_hosts
from terminus.server.error_shapes import reshape
from terminus.server.errors import error_body
from terminus.server.guard import HostPolicy, is_json, parse_origin, split_host

# --- host names --------------------------------------------------------------------------


def test_split_host() -> None:
    assert split_host("Attacker.Example:8080") == ("attacker.example", 8080)
    assert split_host("[::1]:8080") == ("::1", 8080)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("localhost.") == ("localhost", None)
    assert split_host("127.0.0.1") == ("127.0.0.1", None)


def test_host_policy_defaults_to_loopback_and_the_bound_address() -> None:
    policy = HostPolicy("127.0.0.1")
    for name in ("localhost", "127.0.0.1", "127.0.0.2", "::1", "app.localhost"):
        assert policy.allows(name), name
    for name in ("attacker.example", "192.168.1.4", "localhost.attacker.example", ""):
        assert not policy.allows(name), name
    assert HostPolicy("192.168.1.4").allows("192.168.1.4")
    assert not HostPolicy("192.168.1.4").allows("192.168.1.5")


def test_host_policy_extra_names_and_wildcards() -> None:
    policy = HostPolicy("127.0.0.1", ["my-box.lan", "*.example.test"])
    assert policy.allows("my-box.lan") and policy.allows("api.example.test")
    assert not policy.allows("example.test") and not policy.allows("other.lan")
    assert HostPolicy("127.0.0.1", ["*"]).allows("anything.example")
    # on every interface: IP literals pass (rebinding needs a DNS name), names do not
    every = HostPolicy("0.0.0.0")
    assert every.allows("10.1.2.3") and every.allows("fe80::1")
    assert not every.allows("attacker.example")


def test_allowed_hosts_from_flags_and_env() -> None:
    env = {"TERMINUS_ALLOWED_HOSTS": "b.lan, *.c.lan,,"}
    assert resolve_allowed_hosts(["a.lan", " "], env=env) == ("a.lan", "b.lan", "*.c.lan")
    assert resolve_allowed_hosts([], env={}) == ()


def test_wildcards_need_an_api_key() -> None:
    with pytest.raises(InvalidParameterError, match="cors-origin '\\*' without an API key"):
        ServerSettings(cors_origins=("*",))
    with pytest.raises(InvalidParameterError, match="allowed-host '\\*' without an API key"):
        ServerSettings(allowed_hosts=("*",))
    ServerSettings(cors_origins=("*",), allowed_hosts=("*",), api_keys=frozenset({"k"}))


def test_serve_refuses_wildcards_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERMINUS_API_KEYS", raising=False)
    monkeypatch.delenv("TERMINUS_API_KEYS_FILE", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--cors-origin", "*"])
    assert result.exit_code == 2, result.output
    assert "refusing --cors-origin '*' without an API key" in result.output
    result = CliRunner().invoke(cli, ["serve", "--allowed-host", "*"])
    assert result.exit_code == 2, result.output
    assert "refusing --allowed-host '*' without an API key" in result.output
    monkeypatch.setenv("TERMINUS_ALLOWED_HOSTS", "*")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "--allowed-host '*'" in result.output


def test_origins_and_media_types() -> None:
    assert parse_origin("http://LOCALHOST:3000") == ("http", "localhost", 3000)
    assert parse_origin("https://example.test") == ("https", "example.test", 443)
    assert parse_origin("null") is None and parse_origin("file://") is None
    assert is_json("application/json; charset=utf-8") and is_json("application/merge+json")
    assert not is_json("text/plain") and not is_json("") and not is_json("text/json+x")


# --- over HTTP (in process) --------------------------------------------------------------


async def test_rebinding_host_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/models", headers={"Host": "attacker.example:8080"})
    error = assert_error(response, 403, "host_not_allowed")
    assert "attacker.example" in error["message"]
    for host in ("localhost:8080", "127.0.0.1", "[::1]:1234"):
        assert (await api.get("/v1/models", headers={"Host": host})).status_code == 200


async def test_extra_host_names(make_app: Any) -> None:
    async with running(make_app(allowed_hosts=("my-box.lan",))) as http:
        assert (await http.get("/v1/models", headers={"Host": "my-box.lan:80"})).status_code == 200
        response = await http.get("/v1/models", headers={"Host": "other.lan"})
        assert_error(response, 403, "host_not_allowed")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/embeddings", "/terminus/v1/rag/workspaces/pets/search"]
)
async def test_json_endpoints_refuse_other_bodies(
    api: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    """A cross-site page can send these without a preflight: nothing runs."""
    body = b'{"model": "fake-chat", "input": "hi", "query": "hi", "messages": []}'
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.post(path, content=body, headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]


async def test_json_is_accepted_with_parameters(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions",
        content=httpx.Request("POST", "/", json=chat_body()).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    # no body at all is not a simple-request attack: the endpoint answers 400 itself
    assert_error(await api.post("/v1/chat/completions"), 400)


async def test_form_endpoints_take_form_data(api: httpx.AsyncClient) -> None:
    """Audio uploads are multipart: the guard lets them through to the endpoint."""
    response = await api.post(
        "/v1/audio/transcriptions",
        data={"model": "fake-chat"},
        files={"file": ("a.wav", b"RIFF....")},
    )
    assert response.status_code != 415, response.text
    assert_error(response, 400)  # fake-chat is no speech model
    text = await api.post(
        "/v1/audio/transcriptions", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert_error(text, 415, "unsupported_media_type")


async def test_origin_must_be_allowed_or_the_same(api: httpx.AsyncClient) -> None:
    evil = {"Origin": "http://evil.example", "Host": "127.0.0.1:8080"}
    assert_error(await api.get("/v1/models", headers=evil), 403, "origin_not_allowed")
    response = await api.post("/v1/chat/completions", json=chat_body(), headers=evil)
    assert_error(response, 403, "origin_not_allowed")
    null = {"Origin": "null", "Host": "127.0.0.1:8080"}
    assert_error(await api.get("/v1/models", headers=null), 403, "origin_not_allowed")
    # another port on the same machine is another origin
    other_port = {"Origin": "http://127.0.0.1:3000", "Host": "127.0.0.1:8080"}
    assert_error(await api.get("/v1/models", headers=other_port), 403)
    # a page served by this server calls it from its own origin
    same = {"Origin": "http://127.0.0.1:8080", "Host": "127.0.0.1:8080"}
    response = await api.post("/v1/chat/completions", json=chat_body(), headers=same)
    assert response.status_code == 200, response.text
    default_port = {"Origin": "http://localhost", "Host": "localhost:80"}
    assert (await api.get("/v1/models", headers=default_port)).status_code == 200


async def test_cors_origins_pass_the_origin_check(make_app: Any) -> None:
    app = make_app(cors_origins=("http://localhost:3000",))
    async with running(app) as http:
        headers = {"Origin": "http://localhost:3000"}
        response = await http.post("/v1/chat/completions", json=chat_body(), headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        preflight = await http.options(
            "/v1/chat/completions",
            headers={**headers, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        other = await http.get("/v1/models", headers={"Origin": "http://localhost:4000"})
        assert_error(other, 403, "origin_not_allowed")


# --- error shapes ------------------------------------------------------------------------


def test_shape_by_path() -> None:
    def shaped(path: str, status: int) -> dict[str, Any]:
        return reshape(path, status, error_body("m", status=status, code="c"))

    assert shaped("/api/chat", 415) == {"error": "m"}
    assert shaped("/api", 403) == {"error": "m"}
    assert shaped("/apiary", 403)["error"]["code"] == "c"
    assert shaped("/v1/messages", 403) == {
        "type": "error",
        "error": {"type": "permission_error", "message": "m"},
    }
    assert shaped("/v1/messages/count_tokens", 429)["error"]["type"] == "rate_limit_error"
    assert shaped("/v1/chat/completions", 415)["error"]["type"] == "invalid_request_error"


async def test_middleware_errors_take_the_shape_of_the_path(make_app: Any) -> None:
    """Ollama and Anthropic clients read their own error shapes, even from the guard."""
    async with running(make_app()) as http:
        plain = {"Content-Type": "text/plain"}
        ollama = await http.post("/api/chat", content=b"{}", headers=plain)
        assert ollama.status_code == 415 and set(ollama.json()) == {"error"}
        assert "application/json" in ollama.json()["error"]
        rebinding = await http.get("/api/tags", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 403 and "attacker.example" in rebinding.json()["error"]
        anthropic = await http.post("/v1/messages", content=b"{}", headers=plain)
        assert anthropic.status_code == 415
        body = anthropic.json()
        assert body == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": body["error"]["message"]},
        }
        foreign = await http.post("/v1/messages", json={}, headers={"Origin": "http://evil.test"})
        assert foreign.json()["error"]["type"] == "permission_error"
        assert_error(await http.post("/v1/chat/completions", content=b"{}", headers=plain), 415)


async def test_websockets_get_the_same_host_and_origin_checks(api: httpx.AsyncClient) -> None:
    from terminus.server.guard import GuardMiddleware

    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    guard = GuardMiddleware(inner, hosts=HostPolicy("127.0.0.1"))

    def scope(host: bytes, origin: bytes) -> dict[str, Any]:
        headers = [(b"host", host), (b"origin", origin)]
        return {"type": "websocket", "path": "/ws", "scheme": "ws", "headers": headers}

    await guard(scope(b"attacker.example", b"http://attacker.example"), receive, send)
    await guard(scope(b"127.0.0.1:8080", b"http://evil.example"), receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}] * 2 and not reached
    await guard(scope(b"127.0.0.1:8080", b"http://127.0.0.1:8080"), receive, send)
    assert reached == ["websocket"]
