"""`make lambda-package`: the Lambda layer of third-party packages, built without Docker.

pip downloads wheels built for Lambda's platform (Amazon Linux 2023, arm64, CPython 3.12) into
infra/build/lambda-deps/python/, exactly those of requirements/lambda.txt, each checked against
its hash, then compiles them to bytecode. Lambda's file system is read-only, so a module shipped
without a .pyc is compiled again at every cold start (benchmarks/coldstart.py measures the
difference).

The lock is `make lock`'s: it resolves `--requirements` (what this module prints) for Lambda's
platform, at the versions of requirements/dev.txt, the ones the tests run against.

This command needs PyPI. Synthesis does not: without this folder it uses a placeholder.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from infra.layout import LAMBDA_DEPS, LAMBDA_LOCK, REPO_ROOT

# Lambda runs python3.12 on Amazon Linux 2023 (glibc 2.34). python3.11 runs on Amazon Linux 2
# (glibc 2.26), where current cryptography releases ship no arm64 wheel that loads.
LAMBDA_PYTHON = (3, 12)
# Graviton: 20% cheaper per GB-second than x86_64 for the same memory, and every dependency
# publishes aarch64 wheels. pip takes these tags literally (it does not widen them to older
# manylinux versions), so each glibc level Amazon Linux 2023 satisfies is listed; `make lock`
# resolves the lock for the newest (uv's aarch64-manylinux_2_34 takes every older one).
PIP_PLATFORMS = (
    "manylinux_2_34_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux2014_aarch64",
)
# Runtime dependencies the function never imports: uvicorn serves the container shape only,
# and redis only fans subscriptions out (which Lambda cannot hold) when BROADCAST_URL is set.
NOT_IN_LAMBDA = frozenset({"uvicorn", "redis"})
# The adapter, from the project's `lambda` extra.
LAMBDA_EXTRA = "lambda"


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"][LAMBDA_EXTRA]]
    return [req for req in wanted if _name(req) not in NOT_IN_LAMBDA]


def _name(requirement: str) -> str:
    for separator in "[=<>!~; ":
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower()


def pip_command(*, target: Path, lock: Path) -> list[str]:
    platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
    major, minor = LAMBDA_PYTHON
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        f"{major}.{minor}",
        "--only-binary=:all:",
        # Bytecode compiled by this interpreter would be for its own version, not Lambda's.
        "--no-compile",
        "--require-hashes",
        # The lock is the whole resolution for Lambda's platform; pip would evaluate the
        # packages' own markers for this machine instead.
        "--no-deps",
        "--requirement",
        str(lock),
    ]


def lambda_python(candidates: list[str]) -> str | None:
    """The first interpreter of Lambda's Python version that runs, to compile bytecode for it.

    Each is asked its version: a pyenv shim is on PATH whether or not its version is active.
    """
    major, minor = LAMBDA_PYTHON
    for candidate in candidates:
        try:
            answer = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                [candidate, "-c", "import sys; print(*sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if answer.stdout.split() == [str(major), str(minor)]:
            return candidate
    return None


def _candidates(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    major, minor = LAMBDA_PYTHON
    found = shutil.which(f"python{major}.{minor}")
    return [sys.executable, *([found] if found else [])]


def compile_bytecode(python: str, folder: Path) -> None:
    # unchecked-hash: the .pyc is trusted without comparing the source's mtime, which the
    # deployment zip does not preserve; a stale .pyc cannot happen since both ship together.
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(folder),
        ],
        check=True,
    )


def build(destination: Path, *, python: str | None) -> None:
    site = destination / "python"
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = pip_command(target=staging / "python", lock=LAMBDA_LOCK)
    subprocess.run(command, check=True)  # noqa: S603 - fixed arguments, no shell
    compiler = lambda_python(_candidates(python))
    if compiler is None:
        major, minor = LAMBDA_PYTHON
        print(
            f"warning: no working python{major}.{minor} found (give one with --python), so "
            "the layer has no bytecode and every cold start compiles its modules again "
            "(see benchmarks/coldstart.py)",
            file=sys.stderr,
        )
    else:
        compile_bytecode(compiler, staging / "python")
    # Replace the old layer only once the new one is complete.
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    size = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    print(f"Lambda layer: {site} ({size / 1e6:.1f} MB unzipped; Lambda allows 250 MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lambda_package", description=__doc__)
    parser.add_argument("--output", type=Path, default=LAMBDA_DEPS)
    major, minor = LAMBDA_PYTHON
    parser.add_argument(
        "--python",
        help=f"a Python {major}.{minor} to compile bytecode with (default: this one if it is "
        f"{major}.{minor}, else python{major}.{minor} on PATH)",
    )
    parser.add_argument(
        "--requirements",
        action="store_true",
        help="print what the layer needs, from pyproject.toml (`make lock` resolves it), and exit",
    )
    args = parser.parse_args(argv)
    if args.requirements:
        print(*requirements(REPO_ROOT / "pyproject.toml"), sep="\n")
        return 0
    build(args.output, python=args.python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
