"""The locks in requirements/ say what pyproject.toml asks, and this environment is theirs.

Every install takes a lock (pip --require-hashes), so a dependency changed in pyproject.toml
without `make lock` would install the old one everywhere: these fail first. Each lock must hold
exactly what its environment needs from pyproject.toml, each package following its own declared
dependencies (read from the installed packages, at the lock's versions), no more and no less;
every pin must carry hashes, and every lock the versions the tests run against (dev.txt's).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from infra.lambda_package import LAMBDA_PYTHON, NOT_IN_LAMBDA, requirements
from infra.layout import LAMBDA_LOCK

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
PROJECT = canonicalize_name("chat-history-api")
# Their internals are used by storage/fast_path.py and gql/planned.py (see pyproject.toml).
FENCED = ("aiobotocore", "botocore", "graphql-core", "strawberry-graphql")

Environment = dict[str, str]
HERE: Environment = {key: str(value) for key, value in default_environment().items()}
# Lambda's arm64 Python (infra/lambda_package.py), as markers see it.
LAMBDA: Environment = {
    **HERE,
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "python_version": "{}.{}".format(*LAMBDA_PYTHON),
    "python_full_version": "{}.{}.0".format(*LAMBDA_PYTHON),
    "implementation_version": "{}.{}.0".format(*LAMBDA_PYTHON),
}


@dataclasses.dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, environment: Environment) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path) -> list[Pin]:
    pins = []
    # A pin spans lines joined by backslashes; its `# via` annotation is a line of its own.
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line.split(" --hash=", 1)[0])
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins.append(
            Pin(
                name=canonicalize_name(requirement.name),
                version=Version(specifier.version),
                marker=requirement.marker,
                hashes=tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line)),
            )
        )
    return pins


def applicable(pins: Iterable[Pin], environment: Environment) -> dict[NormalizedName, Pin]:
    found: dict[NormalizedName, Pin] = {}
    for pin in pins:
        if pin.applies(environment):
            assert pin.name not in found, f"{pin.name} is pinned twice for one environment"
            found[pin.name] = pin
    return found


def project() -> dict[str, list[str]]:
    """The project's requirements by extra; "" holds the base dependencies."""
    table = tomllib.loads(PYPROJECT.read_text())["project"]
    return {"": table["dependencies"], **table["optional-dependencies"]}


def asked(extras: Iterable[str]) -> list[Requirement]:
    """The base dependencies and those of `extras`, the project's own extras unfolded."""
    declared = project()
    result: list[Requirement] = []
    pending, seen = ["", *extras], set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in declared[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == PROJECT:
                pending.extend(requirement.extras)
            else:
                result.append(requirement)
    return result


# Each lock and what it must hold: the service's image, `make run`, `make test`, Lambda's layer.
LOCKS: dict[str, tuple[list[Requirement], Environment]] = {
    "service.txt": (asked([]), HERE),
    "local.txt": (asked(["local"]), HERE),
    "dev.txt": (asked(["dev"]), HERE),
    LAMBDA_LOCK.name: ([Requirement(line) for line in requirements(PYPROJECT)], LAMBDA),
}


def needed(roots: list[Requirement], environment: Environment) -> dict[NormalizedName, set[str]]:
    """Every package `roots` need in `environment` (with the extras asked of each), following
    each installed package's declared dependencies."""
    wanted: dict[NormalizedName, set[str]] = {}
    pending = [root for root in roots if root.marker is None or root.marker.evaluate(environment)]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in wanted and requirement.extras <= wanted[name]:
            continue
        extras = wanted.setdefault(name, set())
        extras |= requirement.extras
        try:
            declared = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is needed but not installed: run make lock, then make install")
        for line in declared:
            dependency = Requirement(line)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra})
                for extra in ("", *extras)
            ):
                pending.append(dependency)
    return wanted


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_of_pyproject_is_satisfied_by_its_lock(lock: str) -> None:
    roots, environment = LOCKS[lock]
    pins = applicable(read_lock(ROOT / "requirements" / lock), environment)

    unsatisfied = [
        str(requirement)
        for requirement in roots
        if (requirement.marker is None or requirement.marker.evaluate(environment))
        and not (
            (pin := pins.get(canonicalize_name(requirement.name)))
            and requirement.specifier.contains(pin.version, prereleases=True)
        )
    ]
    assert not unsatisfied, f"not in requirements/{lock} as asked: run make lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_holds_exactly_what_its_environment_needs(lock: str) -> None:
    roots, environment = LOCKS[lock]
    pins = applicable(read_lock(ROOT / "requirements" / lock), environment)

    wanted = needed(roots, environment)
    assert sorted(set(wanted) - set(pins)) == [], f"missing from {lock}: run make lock"
    assert sorted(set(pins) - set(wanted)) == [], f"no longer needed in {lock}: run make lock"


def test_this_environment_has_the_dev_locks_versions() -> None:
    # What the tests ran against is what every lock pins (next test): make install took it.
    pins = applicable(read_lock(ROOT / "requirements" / "dev.txt"), HERE)

    installed = {name: Version(importlib.metadata.version(name)) for name in pins}
    assert installed == {name: pin.version for name, pin in pins.items()}, (
        "this environment is not the lock's: run make install"
    )


@pytest.mark.parametrize("lock", [lock for lock in LOCKS if lock != "dev.txt"])
def test_every_lock_pins_the_versions_the_tests_run_against(lock: str) -> None:
    dev = {pin.name: pin.version for pin in read_lock(ROOT / "requirements" / "dev.txt")}

    differ = {
        pin.name: (str(pin.version), str(dev.get(pin.name)))
        for pin in read_lock(ROOT / "requirements" / lock)
        if dev.get(pin.name) != pin.version
    }
    assert differ == {}, f"{lock} and dev.txt disagree: run make lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_the_hashes_of_its_files(lock: str) -> None:
    pins = read_lock(ROOT / "requirements" / lock)

    assert pins
    assert [pin.name for pin in pins if not pin.hashes] == []


def test_the_lambda_layer_leaves_out_what_lambda_never_imports() -> None:
    pins = {pin.name for pin in read_lock(LAMBDA_LOCK)}

    assert pins.isdisjoint(NOT_IN_LAMBDA)
    assert {"mangum", "aioboto3"} <= pins


def test_libraries_whose_internals_we_use_are_pinned_exactly() -> None:
    base: Mapping[NormalizedName, Requirement] = {
        canonicalize_name(requirement.name): requirement for requirement in asked([])
    }

    for name in FENCED:
        (specifier,) = base[canonicalize_name(name)].specifier
        assert specifier.operator == "==", name
