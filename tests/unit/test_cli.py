"""The CLI's arguments and error reporting, and the dev stack's pure parts, in-process."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import sys
import urllib.parse
from pathlib import Path

import pytest

from graphql_api import cli
from graphql_api.local import devstack
from graphql_api.local.cognito import DevCognito
from graphql_api.settings import DynamoDBSettings, Settings

SETTINGS_VARIABLES = list(Settings.variables())


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Variables for `run_cli` to set, in an environment cleared of the service's settings."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return {}


def run_cli(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], *arguments: str) -> int:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return cli.main(list(arguments))


def test_serve_names_the_first_missing_setting_on_one_line(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    environ |= {"CHAT_TABLE_NAME": "chat", "AWS_REGION": "eu-west-1"}

    assert run_cli(monkeypatch, environ, "serve") == cli.EXIT_CONFIGURATION

    assert capsys.readouterr().err == (
        "configuration error: COGNITO_USER_POOL_ID: is required but not set\n"
    )


def test_serve_names_an_invalid_setting_and_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    environ |= {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": "eu-west-1",
        "COGNITO_USER_POOL_ID": "eu-west-1_abc",
        "COGNITO_APP_CLIENT_IDS": "client",
        "MAX_PAGE_SIZE": "lots",
    }

    assert run_cli(monkeypatch, environ, "serve") == cli.EXIT_CONFIGURATION

    assert capsys.readouterr().err == "configuration error: MAX_PAGE_SIZE: 'lots' is not a number\n"


def test_create_table_needs_the_table_settings(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, environ, "create-table") == cli.EXIT_CONFIGURATION

    assert capsys.readouterr().err == (
        "configuration error: CHAT_TABLE_NAME: is required but not set\n"
    )


def test_create_table_needs_no_cognito_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": "eu-west-1",
        "DYNAMODB_ENDPOINT_URL": "http://x",
    }
    asked: list[DynamoDBSettings] = []

    async def create(settings: DynamoDBSettings) -> bool:
        asked.append(settings)
        return True

    monkeypatch.setattr(cli, "_create", create)

    assert run_cli(monkeypatch, environ, "create-table") == 0
    assert capsys.readouterr().out == "table 'chat' created; it is ACTIVE\n"
    (settings,) = asked
    assert (settings.table_name, settings.region, settings.endpoint_url) == (
        "chat",
        "eu-west-1",
        "http://x",
    )


@pytest.mark.parametrize("workers", ["0", "-1", "many"])
def test_serve_refuses_a_worker_count_below_one(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--workers", workers])

    assert exited.value.code == cli.EXIT_CONFIGURATION
    assert "--workers" in capsys.readouterr().err


def test_dev_says_so_when_its_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        arguments = ["dev", "--no-browser", "--port", port, "--state-dir", str(tmp_path)]

        assert run_cli(monkeypatch, environ, *arguments) == cli.EXIT_FAILURE

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"dev: cannot listen on 127.0.0.1:{port}: ")


def test_dev_token_without_a_dev_server_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["dev-token", "--state-dir", str(tmp_path)]) == cli.EXIT_FAILURE

    assert capsys.readouterr().err == (
        "dev-token: no dev server is running on this port (start one with `chat-history-api dev`)\n"
    )


def test_the_dev_stack_turns_the_explorer_on_and_ignores_production_cognito() -> None:
    environ = {"COGNITO_USER_POOL_ID": "eu-west-1_prod", "COGNITO_APP_CLIENT_IDS": "prod"}
    with cognito_at("http://127.0.0.1:5000", pool_id="us-east-1_a", client_id="c") as cognito:
        settings = devstack.dev_settings(environ, cognito, moto_url="http://127.0.0.1:5000")

    assert settings.graphiql_enabled
    assert settings.introspection_enabled
    dynamodb = settings.dynamodb
    assert (dynamodb.table_name, dynamodb.region) == ("chat-history-dev", "us-east-1")
    assert settings.cognito.app_client_ids == ("c",)
    assert devstack.dynamodb_settings(environ).endpoint_url is None


def cognito_at(endpoint_url: str, *, pool_id: str, client_id: str) -> DevCognito:
    """A handle on a pool; nothing is sent until it is used."""
    region = pool_id.split("_")[0]
    return DevCognito(
        endpoint_url=endpoint_url, region=region, pool_id=pool_id, client_id=client_id
    )


def test_the_dev_stack_trusts_tokens_of_its_own_pool_from_moto_keys() -> None:
    with cognito_at(
        "http://127.0.0.1:5000", pool_id="eu-west-1_abc", client_id="client"
    ) as cognito:
        settings = devstack.dev_settings(
            {"AWS_REGION": "eu-west-1"}, cognito, moto_url="http://127.0.0.1:5000"
        )

    assert settings.dynamodb.endpoint_url == "http://127.0.0.1:5000"
    assert settings.cognito.jwks_url == (
        "http://127.0.0.1:5000/eu-west-1_abc/.well-known/jwks.json"
    )
    assert settings.cognito.issuer.endswith("amazonaws.com/eu-west-1_abc")
    assert settings.cognito.app_client_ids == ("client",)
    assert settings.cognito.token_use == "access"


def test_an_endpoint_in_the_environment_keeps_its_place() -> None:
    environ = {"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8001"}
    with cognito_at("http://127.0.0.1:5000", pool_id="us-east-1_a", client_id="c") as cognito:
        settings = devstack.dev_settings(environ, cognito, moto_url="http://127.0.0.1:5000")

    assert settings.dynamodb.endpoint_url == "http://127.0.0.1:8001"


def test_dev_state_survives_a_round_trip(tmp_path: Path) -> None:
    state = devstack.DevState(
        moto_url="http://127.0.0.1:1",
        region="us-east-1",
        pool_id="us-east-1_a",
        client_id="c",
        graphql_url="http://127.0.0.1:2/graphql",
        pid=1,
    )
    path = devstack.state_path(tmp_path / "nested", 8000)

    state.write(path)

    assert devstack.DevState.read(path) == state


def test_unreadable_dev_state_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "dev-8000.json"
    path.write_text("{not json")

    with pytest.raises(devstack.DevStackError, match="unreadable dev stack state"):
        devstack.DevState.read(path)


def test_the_state_directory_follows_xdg_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")

    state_dir = devstack.default_state_dir({"XDG_CACHE_HOME": "/var/cache/me"})

    assert state_dir == Path("/var/cache/me/chat-history-api")


@pytest.mark.parametrize(
    ("platform", "environ", "opens"),
    [
        ("linux", {"DISPLAY": ":0"}, True),
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, True),
        ("linux", {}, False),
        ("linux", {"DISPLAY": ":0", "CI": "true"}, False),
        ("darwin", {}, True),
        ("darwin", {"CI": "1"}, False),
    ],
)
def test_the_browser_opens_only_where_someone_can_see_it(
    monkeypatch: pytest.MonkeyPatch, platform: str, environ: dict[str, str], opens: bool
) -> None:
    monkeypatch.setattr(sys, "platform", platform)

    assert devstack.can_open_browser(environ) is opens


def test_graphiql_opens_on_the_sample_query() -> None:
    url = devstack.graphiql_url("http://127.0.0.1:8000/graphql")

    query = urllib.parse.urlsplit(url).query
    assert query.startswith("q=")
    assert "+" not in query  # read as a space by URLSearchParams, kept by decodeURIComponent
    assert urllib.parse.unquote(query.removeprefix("q=")) == devstack.SAMPLE_QUERY


def test_the_seeded_user_is_the_tokens_subject() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "abc-123"}).encode()).rstrip(b"=")

    assert devstack.subject_of(f"header.{payload.decode()}.signature") == "abc-123"


def prepared_stack(*, persistent: bool) -> devstack.DevStack:
    environ = {"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9000"} if persistent else {}
    with cognito_at("http://127.0.0.1:9001", pool_id="us-east-1_a", client_id="c") as cognito:
        settings = devstack.dev_settings(environ, cognito, moto_url="http://127.0.0.1:9001")
    return devstack.DevStack(
        settings=settings,
        credentials=None,
        persistent=persistent,
        moto_url="http://127.0.0.1:9001",
        graphql_url="http://127.0.0.1:8000/graphql",
        token="tok.en.value",
        seeded=2,
    )


def test_the_banner_says_in_memory_data_is_gone_at_exit() -> None:
    text = devstack.banner(prepared_stack(persistent=False), command="chat-history-api")

    assert "in memory (moto on http://127.0.0.1:9001): gone at exit" in text


def test_the_banner_says_a_persistent_table_outlives_the_process() -> None:
    text = devstack.banner(prepared_stack(persistent=True), command="chat-history-api")

    assert "'chat-history-dev' on http://127.0.0.1:9000" in text
    assert "outlives this process" in text


def test_the_banner_prints_the_token_once_and_its_curl_command_uses_it() -> None:
    text = devstack.banner(prepared_stack(persistent=False), command="chat-history-api")

    assert text.count("tok.en.value") == 1
    assert "  TOKEN=tok.en.value\n" in text
    assert '-H "Authorization: Bearer $TOKEN"' in text
    body = text.split("-d '", 1)[1].split("'\n", 1)[0]
    assert json.loads(body) == {"query": devstack.CURL_QUERY}


def test_the_banners_graphiql_link_opens_on_the_sample_query() -> None:
    text = devstack.banner(prepared_stack(persistent=False), command="chat-history-api")

    [link] = [line.split()[1] for line in text.splitlines() if line.startswith("  GraphiQL:")]
    assert link == devstack.graphiql_url("http://127.0.0.1:8000/graphql")


def test_the_sample_query_is_the_readmes_first_query() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    first_try = readme.split("## A first try", 1)[1]
    readmes = first_try.split("```graphql\n", 1)[1].split("```", 1)[0]

    sample = devstack.SAMPLE_QUERY.splitlines(keepends=True)
    assert sample[0].startswith("# ")
    assert "".join(line for line in sample if not line.startswith("#")) == readmes
    # The editor's comment does not ask for the token the headers already hold.
    assert "put your token" not in devstack.SAMPLE_QUERY.lower()


def test_dev_token_finds_the_stack_by_the_state_it_leaves() -> None:
    state = prepared_stack(persistent=False).state()

    assert (state.moto_url, state.region) == ("http://127.0.0.1:9001", "us-east-1")
    assert (state.pool_id, state.client_id) == ("us-east-1_a", "c")
    assert state.graphql_url == "http://127.0.0.1:8000/graphql"


def test_the_banner_names_the_port_for_dev_token_when_it_is_not_the_default() -> None:
    stack = dataclasses.replace(
        prepared_stack(persistent=False), graphql_url="http://127.0.0.1:8123/graphql"
    )
    command = ".venv/bin/chat-history-api"

    assert f"{command} dev-token --user dev --port 8123\n" in devstack.banner(
        stack, command=command
    )
    assert f"{command} dev-token --user dev\n" in devstack.banner(
        prepared_stack(persistent=False), command=command
    )


def script(directory: Path) -> Path:
    directory.mkdir(parents=True)
    program = directory / "chat-history-api"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_from_the_clone_the_dev_token_command_is_the_virtualenvs_script(tmp_path: Path) -> None:
    script(tmp_path / ".venv" / "bin")

    # `make run`, or the README's .venv/bin/chat-history-api dev, with nothing on PATH.
    for argv0 in (".venv/bin/chat-history-api", str(tmp_path / ".venv/bin/chat-history-api")):
        command = cli.invocation(argv0, executable="python3", cwd=tmp_path, path="/usr/bin")
        assert command == ".venv/bin/chat-history-api"


def test_a_script_on_path_is_named_by_its_name_and_another_one_by_its_path(
    tmp_path: Path,
) -> None:
    ours = script(tmp_path / "venv" / "bin")
    other = script(tmp_path / "elsewhere")
    clone = tmp_path / "clone"
    clone.mkdir()

    on_path = cli.invocation(str(ours), executable="python3", cwd=clone, path=str(ours.parent))
    shadowed = cli.invocation(
        str(ours), executable="python3", cwd=clone, path=f"{other.parent}:{ours.parent}"
    )

    assert on_path == "chat-history-api"
    assert shadowed == str(ours)


def test_started_as_a_module_the_command_is_the_same_python_and_module(tmp_path: Path) -> None:
    python = tmp_path / ".venv" / "bin" / "python"

    command = cli.invocation(
        str(tmp_path / "graphql_api" / "cli.py"), executable=str(python), cwd=tmp_path, path=None
    )
    elsewhere = tmp_path / "elsewhere"
    from_elsewhere = cli.invocation("cli.py", executable=str(python), cwd=elsewhere, path=None)

    assert command == ".venv/bin/python -m graphql_api.cli"
    assert from_elsewhere == f"{python} -m graphql_api.cli"
