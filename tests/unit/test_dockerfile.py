"""The production image, checked without a Docker engine.

The Dockerfile is parsed for what matters in production (multi-stage, slim base, non-root,
the right entry point, a health check, installs from the service's lock), and its install steps
are replayed into a clean virtualenv: the same files, the same pip commands, so the image gets a
working `chat-history-api` and none of the development tools.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

import graphql_api.cli
from graphql_api.graphiql import STATIC

ROOT = Path(__file__).resolve().parents[2]
Instruction = dict[str, Any]


def instructions() -> list[Instruction]:
    parser = DockerfileParser(fileobj=io.BytesIO((ROOT / "Dockerfile").read_bytes()))
    return [item for item in parser.structure if item["instruction"] != "COMMENT"]


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for item in instructions():
        if item["instruction"] == "FROM":
            result.append([])
        result[-1].append(item)
    return result


def values(stage: list[Instruction], instruction: str) -> list[str]:
    return [str(item["value"]) for item in stage if item["instruction"] == instruction]


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"{value!r} is not exec form (a JSON array)"
    return [str(part) for part in parsed]


def test_the_image_is_built_in_stages_on_slim_python() -> None:
    froms = [value.split()[0] for stage in stages() for value in values(stage, "FROM")]

    assert len(froms) >= 2
    assert all(image == "python:3.11-slim" for image in froms), froms


def test_the_final_stage_takes_only_the_virtualenv_from_the_builder() -> None:
    final = stages()[-1]

    copies = values(final, "COPY")
    assert copies, "the final stage copies nothing"
    assert all(copy.startswith("--from=builder ") for copy in copies), copies
    assert not [run for run in values(final, "RUN") if "pip" in run], "pip runs in the final stage"


VENV_PIP = "/opt/venv/bin/pip"


def builder_installs() -> list[list[str]]:
    """The arguments of each `pip install` the builder runs into the image's virtualenv."""
    installs = []
    for run in values(stages()[0], "RUN"):
        for command in run.split("&&"):
            words = shlex.split(command)
            if words[:2] == [VENV_PIP, "install"]:
                installs.append(words[2:])
    return installs


def test_the_builder_installs_the_service_lock_with_hashes_then_the_project_alone() -> None:
    installs = [words for words in builder_installs() if words != ["--upgrade", "pip"]]

    # Every third-party package comes from the lock, checked; the project adds none.
    assert installs == [
        ["--require-hashes", "--requirement", "requirements/service.txt"],
        ["--no-deps", "."],
    ]


def test_the_service_runs_as_a_non_root_user() -> None:
    users = values(stages()[-1], "USER")

    assert users, "the final stage has no USER, so it runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_entry_point_is_the_serve_command_listening_on_all_interfaces() -> None:
    final = stages()[-1]

    (entrypoint,) = values(final, "ENTRYPOINT")
    (command,) = values(final, "CMD")
    assert exec_form(entrypoint) == ["chat-history-api", "serve"]
    arguments = exec_form(command)
    assert arguments[arguments.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - in a container
    assert arguments[arguments.index("--port") + 1] == "8000"
    assert values(final, "EXPOSE") == ["8000"]


def test_the_health_check_probes_healthz_without_curl() -> None:
    (healthcheck,) = values(stages()[-1], "HEALTHCHECK")

    assert "CMD" in healthcheck
    probe = healthcheck.split("CMD", 1)[1]
    assert "http://127.0.0.1:8000/healthz" in probe
    assert exec_form(probe.strip())[0] == "python"


def test_the_entry_point_is_a_console_script_of_the_project() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    target = pyproject["project"]["scripts"]["chat-history-api"]
    module, _, function = target.partition(":")
    assert module == "graphql_api.cli"
    assert callable(getattr(graphql_api.cli, function))


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    # Everything is excluded, then only what the build COPYs is let back in.
    assert ignored[ignored.index("**") + 1 :].count("!graphql_api/") == 1
    assert not [line for line in ignored if line.startswith("!") and "test" in line]


def test_the_build_context_holds_everything_the_builder_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    allowed = [
        line[1:].rstrip("/") for line in ignored[ignored.index("**") + 1 :] if line[0] == "!"
    ]

    sources = [
        source
        for copy in values(stages()[0], "COPY")
        for source in shlex.split(copy)[:-1]
        if not source.startswith("--")
    ]
    assert sources
    for source in sources:
        assert [pattern for pattern in allowed if fnmatch.fnmatch(source, pattern)], source


def build_context(destination: Path) -> Path:
    """The files the builder stage COPYs, laid out as it lays them out."""
    for copy in values(stages()[0], "COPY"):
        *sources, target = shlex.split(copy)
        assert not target.startswith("/"), "replaying assumes COPY targets under WORKDIR"
        for source in sources:
            origin, place = ROOT / source, destination / target
            if origin.is_dir():
                shutil.copytree(origin, place, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                place.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, place / origin.name)
    return destination


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Commands built here from fixed parts, never from input."""
    return subprocess.run(command, text=True, **options)  # noqa: S603


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage's installs, replayed: the same files, the same pip commands, run in
    the same working directory (but upgrading pip, which changes nothing the image holds)."""
    tmp_path = tmp_path_factory.mktemp("image")
    source = build_context(tmp_path / "src")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Keep pip's cache (unlike the image): the test then costs seconds, not a minute.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for arguments in builder_installs():
        if arguments != ["--upgrade", "pip"]:
            run([*pip, *arguments], check=True, env=environment, cwd=source, timeout=600)
    return venv


def test_the_image_install_gives_a_working_command_without_dev_tools(
    image_venv: Path, tmp_path: Path
) -> None:
    venv = image_venv
    command = venv / "bin" / "chat-history-api"
    shown = run([str(command), "--help"], capture_output=True, check=True)
    assert "serve" in shown.stdout
    for absent in ("moto", "pytest", "mypy"):
        probe = [str(venv / "bin" / "python"), "-c", f"import {absent}"]
        assert run(probe, capture_output=True, cwd=tmp_path).returncode != 0, absent
    # Without moto, the dev commands name the missing extra instead of printing a traceback.
    dev = run([str(command), "dev-token", "--state-dir", str(tmp_path)], capture_output=True)
    assert dev.returncode == 1
    assert dev.stderr.splitlines() == [
        "dev-token: the dev stack needs 'moto': pip install 'chat-history-api[local]'"
    ]


def test_the_image_carries_graphiqls_assets(image_venv: Path) -> None:
    # GraphiQL's files are package data: without them the page would have no script to load.
    (installed,) = image_venv.glob("lib/python*/site-packages/graphql_api/graphiql/static")
    manifest = json.loads((installed / "manifest.json").read_text())

    assert manifest == json.loads((STATIC / "manifest.json").read_text())
    assert {path.name for path in installed.iterdir()} == {*manifest["files"], "manifest.json"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((installed / name).read_bytes()).hexdigest() == entry["sha256"]
