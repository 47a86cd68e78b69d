"""The orchestrator behind `python -m benchmarks`: engines, seeding, servers, runs, report.

Processes (all on 127.0.0.1, each started and stopped here by its own pid):
- moto (benchmarks.moto_engine): DynamoDB unless DYNAMODB_ENDPOINT_URL names another engine,
  and always the Cognito IdP whose real tokens every request carries;
- the counting engine (benchmarks.canned_engine), in front of the DynamoDB engine: it counts
  requests and waves, records answers, and replays them as the fast engine;
- per dataset, one uvicorn server (1 worker) per HTTP variant (benchmarks.serve); on the
  headline dataset also the GraphQL service as it was before (its optimisations switched off
  by its settings, scenarios.BEFORE_ENV), measured on the canned engine only; and the service
  serving trusted documents only (scenarios.TRUSTED), whose client sends the same documents by
  id, counted on moto and measured on the canned engine; and the floor (scenarios.FLOOR), a
  bare endpoint answering the service's own answer to the home request, captured first;
- the load generator (benchmarks.driver), which also runs the direct variant;
- once, on the headline dataset, benchmarks.layers: the service's request layers stacked one
  at a time on the floor's endpoint, in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jose import jwt

from benchmarks.children import Child, JsonLinesChild, start_child
from benchmarks.config import (
    REPO_ROOT,
    UNLIMITED_RATES,
    BenchConfig,
    Budget,
    config_from_environment,
)
from benchmarks.procstat import rss_megabytes
from benchmarks.profiling import render, render_text, summarize
from benchmarks.report import write_report
from benchmarks.scenarios import (
    BEFORE,
    BEFORE_ENV,
    BEFORE_SCENARIOS,
    DIRECT_BEFORE,
    FLOOR,
    FLOOR_SCENARIO,
    IN_PROCESS,
    SCENARIOS,
    TRUSTED,
    VARIANTS,
    Variant,
    home_answer,
    trusted_env,
)
from benchmarks.seed import Dataset, DatasetSpec, seed
from graphql_api.local.cognito import DevCognito
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client
from graphql_api.storage.records import format_timestamp
from graphql_api.storage.table import create_table, delete_table

LOCAL_CREDENTIALS = ("testing", "testing")
HEADLINE = ("home", "open", "older", "send", "save", "rename", "mixed")
# On moto, concurrency 16 only shows that moto is the bottleneck: a few scenarios suffice.
MOTO_C16 = ("home", "open", "send")
SCALE = ("home", "open")
# Above this many items moto needs seconds per Query (it scans the table): count only.
HEAVY_ITEMS = 20_000


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    spec: DatasetSpec
    scenarios: tuple[str, ...]
    headline: bool
    # Role in the scale sweep: ("history", n) or ("conversations", n), or None.
    sweep: tuple[tuple[str, int], ...] = ()


def plans(config: BenchConfig) -> list[Plan]:
    """What is seeded, and what is measured on it."""
    victims_per_variant = config.count_repeats + 1
    result = [
        Plan(
            spec=DatasetSpec(
                name="main",
                focus_history=config.headline_history,
                others=13,
                other_history=10,
                writable=16,
            ),
            scenarios=HEADLINE,
            headline=True,
        ),
        Plan(
            spec=DatasetSpec(
                name="delete",
                focus_history=10,
                others=0,
                other_history=0,
                victims=victims_per_variant * len(VARIANTS),
                victim_history=config.delete_history,
            ),
            scenarios=("delete",),
            headline=True,
        ),
    ]
    fewest = min(config.conversation_counts)
    for history in config.history_sizes:
        sweep = [("history", history)]
        if history == min(config.history_sizes):
            sweep.append(("conversations", fewest))
        result.append(
            Plan(
                spec=DatasetSpec(
                    name=f"h{history}", focus_history=history, others=fewest - 1, other_history=10
                ),
                scenarios=SCALE,
                headline=False,
                sweep=tuple(sweep),
            )
        )
    for count in config.conversation_counts:
        if count == fewest:
            continue
        result.append(
            Plan(
                spec=DatasetSpec(
                    name=f"c{count}",
                    focus_history=min(config.history_sizes),
                    others=count - 1,
                    # The home screen reads conversation items only; one message each keeps
                    # the seeding (and moto's table scans) short.
                    other_history=1,
                    # Pins head the list and archived ones are in a list of their own: the
                    # home page must cost the same one Query with both present.
                    pinned=min(50, count // 200),
                    archived=count // 2,
                ),
                scenarios=SCALE,
                headline=False,
                sweep=(("conversations", count),),
            )
        )
    # The opened conversation as a tree: branches of as many messages as the middle history
    # point, the newest active; its page must cost what the linear one's does.
    branch_history = sorted(config.history_sizes)[len(config.history_sizes) // 2]
    result.append(
        Plan(
            spec=DatasetSpec(
                name=f"b{config.branches}x{branch_history}",
                focus_history=branch_history,
                focus_branches=config.branches,
                others=fewest - 1,
                other_history=10,
            ),
            scenarios=SCALE,
            headline=False,
            sweep=(("branches", config.branches),),
        )
    )
    return result


class Bench:
    def __init__(self, config: BenchConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.results: dict[str, Any] = {"counts": [], "loads": [], "datasets": [], "notes": []}
        self.moto: Child
        self.front: Child
        self.front_url = ""
        self.engine_url = ""
        self.cognito: DevCognito
        self.driver: JsonLinesChild
        self.dynamodb: DynamoDBClient
        self.server_detail = ""
        self.tables: list[str] = []

    # --- processes -------------------------------------------------------------------------

    @property
    def local_engine(self) -> bool:
        return self.engine_url.startswith(("http://127.", "http://localhost"))

    def service_env(self, table: str) -> dict[str, str]:
        """The service's settings, as every server variant but the floor reads them."""
        return {
            "CHAT_TABLE_NAME": table,
            "AWS_REGION": self.config.region,
            "DYNAMODB_ENDPOINT_URL": self.front_url,
            # moto at 100,000 items takes seconds per Query: let it answer.
            "DYNAMODB_READ_TIMEOUT": "300",
            "DYNAMODB_DEADLINE_SECONDS": "600",
            "COGNITO_USER_POOL_ID": self.cognito.pool_id,
            "COGNITO_APP_CLIENT_IDS": self.cognito.client_id,
            "COGNITO_JWKS_URL": self.cognito.jwks_url,
            "BENCH_LOCAL_CREDENTIALS": "1" if self.local_engine else "0",
            **UNLIMITED_RATES,
        }

    async def start_server(
        self,
        variant: Variant,
        table: str,
        *,
        profile: Path | None = None,
        floor_body: Path | None = None,
    ) -> Child:
        kind = variant if variant in ("rest", FLOOR) else "graphql"
        env = {
            **self.service_env(table),
            **(BEFORE_ENV if variant == BEFORE else {}),
            **(trusted_env(self.log_dir) if variant == TRUSTED else {}),
            **({"BENCH_FLOOR_BODY": str(floor_body)} if floor_body is not None else {}),
        }
        child = await start_child(
            f"server-{variant}-{table}" + ("-profiled" if profile else ""),
            "benchmarks.serve",
            [kind] if profile is None else [kind, "--profile", str(profile)],
            log_dir=self.log_dir,
            env=env,
            stdin=profile is not None,
        )
        url, _, detail = child.detail.partition(" ")
        child.detail = url
        self.server_detail = detail
        return child

    async def engine_mode(self, mode: str) -> None:
        await self._control("POST", f"/__bench__/mode?mode={mode}")

    async def _control(self, method: str, path: str, body: Any = None) -> Any:
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.front_url + path, json=body) as response,
        ):
            response.raise_for_status()
            return await response.json()

    # --- datasets --------------------------------------------------------------------------

    async def prepare(self, spec: DatasetSpec) -> Dataset:
        table_name = f"bench-{spec.name}-{uuid.uuid4().hex[:8]}"
        await create_table(self.dynamodb, table_name=table_name)
        self.tables.append(table_name)
        username = f"bench-{spec.name}"
        token = await asyncio.to_thread(self._token, username)
        user_id = str(jwt.get_unverified_claims(token)["sub"])
        table = ChatTable(client=self.dynamodb, name=table_name, deadline=3600.0)
        started = time.perf_counter()
        ids = await seed(table, spec, user_id=user_id)
        seconds = time.perf_counter() - started
        log(f"seeded {spec.name}: {spec.item_count:,} items in {seconds:.1f}s")
        self.results["datasets"].append(
            {
                "name": spec.name,
                "items": spec.item_count,
                "conversations": spec.conversations,
                "focus_history": spec.focus_history,
                "victim_history": spec.victim_history,
                "seed_seconds": seconds,
            }
        )
        return Dataset(
            name=spec.name,
            table=table_name,
            username=username,
            user_id=user_id,
            token=token,
            focus_id=ids.focus_id,
            focus_history=spec.focus_history,
            conversations=spec.conversations,
            items=spec.item_count,
            writable_ids=ids.writable_ids,
            victim_ids=ids.victim_ids,
        )

    def _token(self, username: str) -> str:
        self.cognito.ensure_user(username)
        return self.cognito.token_for(username)

    # --- measuring -------------------------------------------------------------------------

    async def measure(self, plan: Plan, dataset: Dataset) -> None:
        http: list[Variant] = ["rest", "graphql"]
        if _before_scenarios(plan):
            http.append(BEFORE)
        if _trusted_scenarios(plan):
            http.append(TRUSTED)
        servers: dict[str, Child] = dict(
            zip(
                http,
                await asyncio.gather(
                    *(self.start_server(variant, dataset.table) for variant in http)
                ),
                strict=True,
            )
        )
        try:
            if plan.headline and FLOOR_SCENARIO in plan.scenarios:
                servers[FLOOR] = await self.start_floor(dataset, servers["graphql"])
            await self._measure(plan, dataset, servers)
        finally:
            await asyncio.gather(*(server.stop() for server in servers.values()))

    async def start_floor(self, dataset: Dataset, graphql: Child) -> Child:
        """The floor, answering what the service answers to the home request now (counted and
        recorded like any request); then the request layers measured against it."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            body = await home_answer(session, graphql.detail, dataset.token)
        path = self.log_dir / "floor-home.json"
        path.write_bytes(body)
        self.results["floor_body_bytes"] = len(body)
        self.results["layers"] = await self.layers(dataset, body)
        return await self.start_server(FLOOR, dataset.table, floor_body=path)

    async def layers(self, dataset: Dataset, body: bytes) -> list[dict[str, Any]]:
        child = await start_child(
            "layers", "benchmarks.layers", [], log_dir=self.log_dir, stdin=True
        )
        try:
            answer = await JsonLinesChild(child).call(
                {
                    "env": self.service_env(dataset.table),
                    "token": dataset.token,
                    "body": body.decode(),
                    "requests": self.config.layer_requests,
                    "rounds": self.config.layer_rounds,
                },
                seconds=600.0,
            )
        finally:
            await child.stop()
        rows: list[dict[str, Any]] = answer["layers"]
        log(
            "request layers: "
            + ", ".join(f"{r['layer']} {r['us_per_request']:.0f} µs" for r in rows)
        )
        return rows

    async def _measure(self, plan: Plan, dataset: Dataset, servers: dict[str, Child]) -> None:
        config = self.config
        heavy = dataset.items > HEAVY_ITEMS
        per_variant = len(dataset.victim_ids) // len(VARIANTS)
        victims = {
            variant: dataset.victim_ids[k * per_variant : (k + 1) * per_variant]
            for k, variant in enumerate(VARIANTS)
        }
        await self.engine_mode("forward")
        trusted = _trusted_scenarios(plan)
        for scenario in plan.scenarios:
            index = dict.fromkeys(VARIANTS, 0)
            if scenario in trusted and scenario != "mixed":
                # Exact counts only: the same requests as GraphQL's, or the fast path is wrong.
                await self.job(
                    "count",
                    plan,
                    dataset,
                    scenario,
                    TRUSTED,
                    servers,
                    victims=[],
                    repeats=config.count_repeats,
                    first_index=20_000,
                )
            for variant in VARIANTS:
                own = victims[variant]
                if scenario != "mixed":
                    repeats = 1 if dataset.items > 100_000 else config.count_repeats
                    first = index[variant]
                    count = await self.job(
                        "count",
                        plan,
                        dataset,
                        scenario,
                        variant,
                        servers,
                        victims=own[:repeats],
                        repeats=repeats,
                        first_index=first,
                    )
                    index[variant] = count["next_index"]
                    if variant == "direct" and scenario in _before_scenarios(plan):
                        await self.count_direct_before(plan, dataset, scenario, count, first)
                if heavy:
                    continue
                if scenario == "delete":
                    spare = own[config.count_repeats :]
                    budget = Budget(max_requests=len(spare), max_seconds=120.0, warmup=0)
                    await self.load(
                        plan, dataset, scenario, variant, servers, "moto", 1, budget, spare, 0
                    )
                    continue
                for concurrency, budget in (
                    (1, config.budget_moto_c1),
                    (16, config.budget_moto_c16),
                ):
                    if concurrency > 1 and (not plan.headline or scenario not in MOTO_C16):
                        continue
                    result = await self.load(
                        plan,
                        dataset,
                        scenario,
                        variant,
                        servers,
                        "moto",
                        concurrency,
                        budget,
                        own,
                        index[variant],
                    )
                    index[variant] = result["next_index"]
        await self.engine_mode("replay")
        before = _before_scenarios(plan)
        for scenario in plan.scenarios:
            # Each before-variant right after its after-variant, so both see the same machine.
            measured: tuple[Variant, ...] = (
                ("direct", DIRECT_BEFORE, "rest", "graphql", BEFORE)
                if scenario in before
                else VARIANTS
            )
            if scenario == FLOOR_SCENARIO and FLOOR in servers:
                measured = (*measured, FLOOR)
            for variant in (*measured, TRUSTED) if scenario in trusted else measured:
                own = victims.get(variant, [])
                for concurrency, budget in (
                    (1, config.budget_canned_c1),
                    (16, config.budget_canned_c16),
                ):
                    if concurrency > 1 and not plan.headline:
                        continue
                    await self.load(
                        plan,
                        dataset,
                        scenario,
                        variant,
                        servers,
                        "canned",
                        concurrency,
                        budget,
                        own,
                        10_000,
                    )
        await self.engine_mode("forward")

    def _address(self, variant: Variant, servers: dict[str, Child]) -> str:
        return self.front_url if variant in IN_PROCESS else servers[variant].detail

    async def count_direct_before(
        self, plan: Plan, dataset: Dataset, scenario: str, direct: dict[str, Any], first: int
    ) -> None:
        """Count the storage calls with the fast path off: they must send exactly the
        requests "direct" (fast path on) sent for the same actions."""
        answer = await self.job(
            "count",
            plan,
            dataset,
            scenario,
            DIRECT_BEFORE,
            {},
            victims=[],
            repeats=len(direct["repeats"]),
            first_index=first,
        )

        def requests(count: dict[str, Any]) -> list[tuple[int, dict[str, int]]]:
            return [(r["requests"], r["operations"]) for r in count["repeats"]]

        if requests(answer) != requests(direct):
            raise AssertionError(
                f"{dataset.name}/{scenario}: the fast path changed the DynamoDB requests: "
                f"{requests(answer)} without it, {requests(direct)} with it"
            )

    async def job(
        self,
        kind: str,
        plan: Plan,
        dataset: Dataset,
        scenario: str,
        variant: Variant,
        servers: dict[str, Child],
        *,
        victims: list[str],
        first_index: int,
        repeats: int = 0,
        extra: dict[str, Any] | None = None,
        seconds: float = 900.0,
    ) -> dict[str, Any]:
        request = {
            "op": kind,
            "client": {"variant": variant, "address": self._address(variant, servers)},
            "scenario": scenario,
            "dataset": dataset.to_json(),
            "victims": victims,
            "first_index": first_index,
            "repeats": repeats,
            "control_url": self.front_url,
            **(extra or {}),
        }
        answer = await self.driver.call(request, seconds=seconds)
        if kind == "count":
            self._record_count(plan, dataset, scenario, variant, answer)
        return answer

    def _record_count(
        self, plan: Plan, dataset: Dataset, scenario: str, variant: Variant, answer: dict[str, Any]
    ) -> None:
        repeats = answer["repeats"]
        first = repeats[0]
        steady = all(
            (r["requests"], r["waves"]) == (first["requests"], first["waves"]) for r in repeats
        )
        self.results["counts"].append(
            {
                "dataset": dataset.name,
                "scenario": scenario,
                "variant": variant,
                "sweep": [list(point) for point in plan.sweep],
                "requests": first["requests"],
                "waves": first["waves"],
                "operations": first["operations"],
                "wave_detail": first["wave_detail"],
                "steady": steady,
                "items": [r["items"] for r in repeats],
                "latency_ms": [r["latency_ms"] for r in repeats],
            }
        )
        log(
            f"count {dataset.name}/{scenario}/{variant}: {first['requests']} requests in "
            f"{first['waves']} waves, {first['latency_ms']:.0f} ms, items {first['items']}"
        )

    async def load(
        self,
        plan: Plan,
        dataset: Dataset,
        scenario: str,
        variant: Variant,
        servers: dict[str, Child],
        engine: str,
        concurrency: int,
        budget: Budget,
        victims: list[str],
        first_index: int,
    ) -> dict[str, Any]:
        server = None if variant in IN_PROCESS else servers[variant]
        answer = await self.job(
            "load",
            plan,
            dataset,
            scenario,
            variant,
            servers,
            victims=victims,
            first_index=first_index,
            extra={
                "concurrency": concurrency,
                "budget": dataclasses.asdict(budget),
                "server_pid": None if server is None else server.pid,
                "engine_pid": self.front.pid,
            },
            seconds=budget.max_seconds * 4 + 600,
        )
        self.results["loads"].append(
            {
                "dataset": dataset.name,
                "scenario": scenario,
                "variant": variant,
                "engine": engine,
                "concurrency": concurrency,
                "sweep": [list(point) for point in plan.sweep],
                "headline": plan.headline,
                **answer,
            }
        )
        latency = answer["latency_ms"]
        log(
            f"load {dataset.name}/{scenario}/{variant} {engine} c{concurrency}: "
            f"{answer['ops']} ops p50 {latency['p50']:.1f} ms p99 {latency['p99']:.1f} ms "
            f"{answer['throughput']:.0f}/s failures {answer['failures']}"
        )
        if answer["failures"]:
            self.results["notes"].append(
                f"{dataset.name}/{scenario}/{variant} {engine} c{concurrency}: "
                f"{answer['failures']} failed: {answer['first_failure']}"
            )
        return answer

    async def profile(self, plan: Plan, dataset: Dataset) -> None:
        """Profile GraphQL (after, before, trusted) and REST on the hottest read, on send and on
        the mix (every action in one server), canned."""
        reads = [s for s in ("home", "open", "older") if s in plan.scenarios]
        # Hottest as the issue found it: by the before-variant's CPU where it was measured.
        measured_before = [s for s in reads if s in _before_scenarios(plan)]
        which: Variant = BEFORE if measured_before else "graphql"

        def graphql_cpu(scenario: str) -> float:
            load = _find_load(self.results["loads"], dataset.name, scenario, which, "canned", 16)
            return 0.0 if load is None or not load["ops"] else load["server_cpu_s"] / load["ops"]

        hottest = max(measured_before or reads, key=graphql_cpu)
        lines: list[str] = []
        for stale in self.config.output_dir.glob("profile_*.txt"):
            stale.unlink()
        await self.engine_mode("replay")
        variants: tuple[Variant, ...] = ("graphql", BEFORE, TRUSTED, "rest")
        profiled = [hottest, "send"] + (["mixed"] if "mixed" in plan.scenarios else [])
        for scenario in profiled:
            for variant in variants:
                session_path = self.log_dir / f"profile-{scenario}-{variant}.pyisession"
                server = await self.start_server(variant, dataset.table, profile=session_path)
                try:
                    answer = await self.job(
                        "load",
                        plan,
                        dataset,
                        scenario,
                        variant,
                        {variant: server},
                        victims=[],
                        first_index=50_000,
                        extra={
                            "concurrency": 16,
                            "budget": dataclasses.asdict(self.config.budget_canned_c16),
                            "server_pid": server.pid,
                            "engine_pid": self.front.pid,
                        },
                    )
                finally:
                    await server.finish()
                name = {BEFORE: "graphql, before", TRUSTED: "graphql, trusted documents"}.get(
                    variant, variant
                )
                label = f"{SCENARIOS[scenario]}, {name} (canned engine, concurrency 16)"
                summary = summarize(label, session_path)
                lines += render(summary, answer["ops"])
                text = render_text(session_path)
                (self.config.output_dir / f"profile_{scenario}_{variant}.txt").write_text(text)
                log(f"profiled {scenario}/{variant}: {answer['ops']} ops")
        await self.engine_mode("forward")
        self.results["profile"] = lines

    async def profile_storage(self, plan: Plan, dataset: Dataset) -> None:
        """Profile the storage calls alone (direct, after and before) on the hottest read and
        on send, canned: the load generator samples itself while it runs them."""
        reads = [s for s in ("home", "open", "older") if s in _before_scenarios(plan)]
        if not reads:
            return

        def before_cpu(scenario: str) -> float:
            load = _find_load(
                self.results["loads"], dataset.name, scenario, DIRECT_BEFORE, "canned", 16
            )
            return 0.0 if load is None or not load["ops"] else load["server_cpu_s"] / load["ops"]

        lines: list[str] = []
        await self.engine_mode("replay")
        for scenario in (max(reads, key=before_cpu), "send"):
            for variant in IN_PROCESS:
                session_path = self.log_dir / f"profile-{scenario}-{variant}.pyisession"
                answer = await self.job(
                    "load",
                    plan,
                    dataset,
                    scenario,
                    variant,
                    {},
                    victims=[],
                    first_index=60_000,
                    extra={
                        "concurrency": 16,
                        "budget": dataclasses.asdict(self.config.budget_canned_c16),
                        "server_pid": None,
                        "engine_pid": self.front.pid,
                        "profile": str(session_path),
                    },
                )
                name = "direct, before" if variant == DIRECT_BEFORE else variant
                label = f"{SCENARIOS[scenario]}, {name} (canned engine, concurrency 16)"
                lines += render(summarize(label, session_path), answer["ops"])
                text = render_text(session_path)
                (self.config.output_dir / f"profile_{scenario}_{variant}.txt").write_text(text)
                log(f"profiled {scenario}/{variant}: {answer['ops']} ops")
        await self.engine_mode("forward")
        self.results["profile_storage"] = lines

    async def proxy_hop_ms(self, dataset: Dataset, samples: int = 200) -> dict[str, float]:
        """What the counting engine adds to one DynamoDB round trip, measured with GetItem."""
        result: dict[str, float] = {}
        key = {"PK": {"S": "bench"}, "SK": {"S": "hop"}}
        config = client_config(
            max_pool_connections=4, connect_timeout=2.0, read_timeout=60.0, max_attempts=1
        )
        for name, url in (("engine", self.engine_url), ("via_counting_engine", self.front_url)):
            async with open_client(
                region=self.config.region,
                endpoint_url=url,
                config=config,
                credentials=LOCAL_CREDENTIALS if self.local_engine else None,
            ) as client:
                timings = []
                for _ in range(samples):
                    started = time.perf_counter()
                    await client.get_item(TableName=dataset.table, Key=key)
                    timings.append((time.perf_counter() - started) * 1000)
                result[name] = sorted(timings)[len(timings) // 2]
        return result


def _before_scenarios(plan: Plan) -> tuple[str, ...]:
    """What the before-variant is measured on: headline reads and send, canned engine."""
    if not plan.headline:
        return ()
    return tuple(scenario for scenario in plan.scenarios if scenario in BEFORE_SCENARIOS)


def _trusted_scenarios(plan: Plan) -> tuple[str, ...]:
    """What the trusted-documents variant is measured on: headline scenarios but delete."""
    if not plan.headline:
        return ()
    return tuple(scenario for scenario in plan.scenarios if scenario != "delete")


def timestamp_parse_us(number: int = 20_000) -> dict[str, float]:
    """Microseconds per stored timestamp parsed: the old strptime against fromisoformat.

    The switch has no setting, so the before-variant parses with fromisoformat too (and so do
    REST and direct, which share the storage code): this is its effect, measured apart.
    """
    text = format_timestamp(datetime.now(UTC))
    old_format = "%Y-%m-%dT%H:%M:%S.%fZ"

    def with_strptime() -> datetime:
        return datetime.strptime(text, old_format).replace(tzinfo=UTC)

    def with_fromisoformat() -> datetime:
        return datetime.fromisoformat(text)

    if with_strptime() != with_fromisoformat():
        raise AssertionError(f"the two parsers disagree on {text!r}")
    result = {}
    for name, parse in (("strptime", with_strptime), ("fromisoformat", with_fromisoformat)):
        result[name] = min(timeit.repeat(parse, number=number, repeat=3)) * 1e6 / number
    return result


def _find_load(
    loads: list[dict[str, Any]],
    dataset: str,
    scenario: str,
    variant: str,
    engine: str,
    concurrency: int,
) -> dict[str, Any] | None:
    for load in loads:
        if (load["dataset"], load["scenario"], load["variant"], load["engine"]) == (
            dataset,
            scenario,
            variant,
            engine,
        ) and load["concurrency"] == concurrency:
            return load
    return None


def code_version() -> str:
    """The commit measured, and whether graphql_api/ had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, no input
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "graphql_api"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (graphql_api/ modified)" if dirty else commit


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("strawberry-graphql", "starlette", "uvicorn", "aiohttp", "aioboto3", "moto"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "code": code_version(),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
        "versions": versions,
    }


@contextlib.asynccontextmanager
async def child_process(child: Child) -> AsyncIterator[Child]:
    try:
        yield child
    finally:
        await child.stop()


async def run(config: BenchConfig) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    bench = Bench(config, log_dir)
    bench.results["machine"] = machine()
    bench.results["config"] = {"quick": config.quick}
    bench.results["timestamp_parse_us"] = timestamp_parse_us()
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        bench.moto = await stack.enter_async_context(
            child_process(await start_child("moto", "benchmarks.moto_engine", [], log_dir=log_dir))
        )
        bench.engine_url = config.dynamodb_endpoint_url or bench.moto.detail
        bench.front = await stack.enter_async_context(
            child_process(
                await start_child(
                    "counting-engine",
                    "benchmarks.canned_engine",
                    ["--upstream", bench.engine_url],
                    log_dir=log_dir,
                )
            )
        )
        bench.front_url = bench.front.detail
        bench.cognito = await asyncio.to_thread(
            DevCognito.create, endpoint_url=bench.moto.detail, region=config.region
        )
        stack.callback(bench.cognito.close)
        driver = await stack.enter_async_context(
            child_process(
                await start_child("driver", "benchmarks.driver", [], log_dir=log_dir, stdin=True)
            )
        )
        bench.driver = JsonLinesChild(driver)
        engine_config = client_config(
            max_pool_connections=16, connect_timeout=2.0, read_timeout=600.0, max_attempts=4
        )
        bench.dynamodb = await stack.enter_async_context(
            open_client(
                region=config.region,
                endpoint_url=bench.engine_url,
                config=engine_config,
                credentials=LOCAL_CREDENTIALS if bench.local_engine else None,
            )
        )
        log(f"engine {bench.engine_url}, counting engine {bench.front_url}, logs in {log_dir}")
        try:
            for number, plan in enumerate(plans(config)):
                dataset = await bench.prepare(plan.spec)
                if number == 0:
                    bench.results["proxy_hop_ms"] = await bench.proxy_hop_ms(dataset)
                await bench.measure(plan, dataset)
                if config.profile and plan.spec.name == "main":
                    await bench.profile(plan, dataset)
                    await bench.profile_storage(plan, dataset)
                bench.results["machine"]["moto_rss_mb"] = rss_megabytes(bench.moto.pid)
        finally:
            if config.dynamodb_endpoint_url:
                for table in bench.tables:
                    with contextlib.suppress(Exception):
                        await delete_table(bench.dynamodb, table_name=table)
    bench.results["machine"]["uvicorn"] = bench.server_detail
    bench.results["machine"]["loadavg_end"] = os.getloadavg()
    bench.results["seconds"] = time.perf_counter() - started
    # Kept only when the run fails: then the children's logs explain why.
    shutil.rmtree(log_dir, ignore_errors=True)
    return bench.results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite RESULTS.md and the plots from the output directory's results.json",
    )
    args = parser.parse_args(argv)
    config = config_from_environment()
    config.output_dir.mkdir(parents=True, exist_ok=True)
    results_path = config.output_dir / "results.json"
    if args.report_only:
        results = json.loads(results_path.read_text())
    else:

        async def bounded() -> dict[str, Any]:
            async with asyncio.timeout(config.deadline_seconds):
                return await run(config)

        results = asyncio.run(bounded())
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, config.output_dir)
    log(f"wrote {config.output_dir / 'RESULTS.md'}")
    return 0
