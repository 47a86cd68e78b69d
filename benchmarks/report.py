"""RESULTS.md and the PNG plots, from the results dictionary a run produced (results.json)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.scenarios import (
    BEFORE,
    BEFORE_ENV,
    DIRECT_BEFORE,
    FLOOR,
    FLOOR_SCENARIO,
    SCENARIOS,
    TRUSTED,
    VARIANTS,
)

VARIANT_NAMES = {
    FLOOR: "floor",
    "direct": "direct",
    "rest": "REST",
    BEFORE: "GraphQL (before)",
    "graphql": "GraphQL",
    DIRECT_BEFORE: "direct (before)",
    TRUSTED: "GraphQL (trusted documents)",
}
# The order of the rows and bars: the before-variant next to the service as it is.
SHOWN = (FLOOR, "direct", "rest", BEFORE, "graphql", TRUSTED)
COLORS = {
    FLOOR: "#bcbd22",
    "direct": "#7f7f7f",
    "rest": "#1f77b4",
    BEFORE: "#f4a3a3",
    "graphql": "#d62728",
    TRUSTED: "#9467bd",
}
HEADLINE_ORDER = ("home", "open", "older", "send", "save", "rename", "delete", "mixed")
# The targets (canned engine), GraphQL against the REST baseline on these screens:
# server CPU per request and p50 at concurrency 1 at most, throughput at concurrency 16 at
# least, these ratios.
TARGET_SCENARIOS = ("home", "open", "send", "mixed")
CPU_TARGET = 1.0
THROUGHPUT_TARGET = 1.0
LATENCY_TARGET = 1.1
# The storage layer's own CPU per operation (direct) with the DynamoDB fast path, against the
# same calls without it (direct before), on these screens.
STORAGE_CPU_TARGET = 0.5
STORAGE_TARGET_SCENARIOS = ("home", "open")
# The service's server CPU per request on these screens at most this multiple of the floor's
# (a bare endpoint answering the same home JSON, canned engine, concurrency 16).
FLOOR_TARGET = 40.0
FLOOR_TARGET_SCENARIOS = ("home",)


def _find(rows: Iterable[dict[str, Any]], **wanted: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(key) == value for key, value in wanted.items()):
            return row
    return None


Row = dict[str, Any] | None


def _scale_point(
    results: dict[str, Any], *, dataset: str, scenario: str, variant: str
) -> tuple[Row, Row, Row]:
    """One point of a scale curve: its exact count, and its canned and moto loads at c1."""
    count = _find(results["counts"], dataset=dataset, scenario=scenario, variant=variant)
    canned, moto = (
        _find(
            results["loads"],
            dataset=dataset,
            scenario=scenario,
            variant=variant,
            engine=engine,
            concurrency=1,
        )
        for engine in ("canned", "moto")
    )
    return count, canned, moto


def _ms(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}" if value < 100 else f"{value:,.0f}"


def _ratio(top: float | None, bottom: float | None) -> str:
    if not top or not bottom or math.isnan(top) or math.isnan(bottom):
        return "-"
    return f"{top / bottom:.2f}x"


def per_op(load: dict[str, Any] | None, field: str) -> float | None:
    if load is None or not load["ops"]:
        return None
    return float(load[field]) * 1000 / int(load["ops"])


def _field(load: dict[str, Any] | None, name: str) -> float | None:
    return None if load is None else float(load[name])


def _p50(load: dict[str, Any] | None) -> float | None:
    return None if load is None else float(load["latency_ms"]["p50"])


def _headline_load(
    results: dict[str, Any], scenario: str, variant: str, engine: str, concurrency: int
) -> dict[str, Any] | None:
    return _find(
        results["loads"],
        scenario=scenario,
        variant=variant,
        engine=engine,
        concurrency=concurrency,
        headline=True,
    )


def _count_cell(count: dict[str, Any] | None) -> str:
    if count is None:
        return "-"
    mark = "" if count["steady"] else " (varies)"
    return f"{count['requests']} / {count['waves']}{mark}"


def _mixed_cell(load: dict[str, Any] | None) -> str:
    if load is None or not load["ops"]:
        return "-"
    engine = load["engine_counts"]
    return f"{engine['requests'] / load['ops']:.2f} / {engine['waves'] / load['ops']:.2f} (avg)"


def _wave(operations: list[str]) -> str:
    if len(set(operations)) == 1 and len(operations) > 1:
        return f"{operations[0]} x{len(operations)}"
    return " + ".join(operations)


def _operations(count: dict[str, Any] | None) -> str:
    """The waves in order, with runs of identical waves folded: `A → B x4 (x20 waves) → C`."""
    if count is None:
        return ""
    if not count["wave_detail"]:
        return ", ".join(f"{name} x{n}" for name, n in sorted(count["operations"].items()))
    folded: list[tuple[str, int]] = []
    for wave in count["wave_detail"]:
        text = _wave(wave)
        if folded and folded[-1][0] == text:
            folded[-1] = (text, folded[-1][1] + 1)
        else:
            folded.append((text, 1))
    return " → ".join(text if n == 1 else f"({text}) x{n} waves" for text, n in folded)


def counts_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | direct | REST | GraphQL | GraphQL's requests, wave by wave |",
        "|---|---|---|---|---|",
    ]
    for scenario in HEADLINE_ORDER:
        dataset = "delete" if scenario == "delete" else "main"
        cells = []
        for variant in VARIANTS:
            if scenario == "mixed":
                cells.append(_mixed_cell(_headline_load(results, "mixed", variant, "moto", 1)))
            else:
                cells.append(
                    _count_cell(
                        _find(
                            results["counts"], dataset=dataset, scenario=scenario, variant=variant
                        )
                    )
                )
        graphql = _find(results["counts"], dataset=dataset, scenario=scenario, variant="graphql")
        lines.append(f"| {SCENARIOS[scenario]} | {' | '.join(cells)} | {_operations(graphql)} |")
    return lines


def latency_table(results: dict[str, Any], engine: str) -> list[str]:
    lines = [
        "| scenario | variant | p50 c1 | p99 c1 | p50 c16 | p99 c16 | ops/s c1 | ops/s c16 "
        "| server CPU ms/op | engine CPU ms/op | load-gen CPU ms/op |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in HEADLINE_ORDER:
        for variant in SHOWN:
            one = _headline_load(results, scenario, variant, engine, 1)
            many = _headline_load(results, scenario, variant, engine, 16)
            if one is None and many is None:
                continue
            busiest = many or one
            cpu_server = per_op(busiest, "server_cpu_s")
            cpu_engine = per_op(busiest, "engine_cpu_s")
            cpu_driver = None if variant == "direct" else per_op(busiest, "driver_cpu_s")
            lines.append(
                "| "
                + " | ".join(
                    [
                        scenario,
                        VARIANT_NAMES[variant],
                        _ms(one["latency_ms"]["p50"] if one else None),
                        _ms(one["latency_ms"]["p99"] if one else None),
                        _ms(many["latency_ms"]["p50"] if many else None),
                        _ms(many["latency_ms"]["p99"] if many else None),
                        _ms(one["throughput"] if one else None, 0),
                        _ms(many["throughput"] if many else None, 0),
                        _ms(cpu_server, 2),
                        _ms(cpu_engine, 2),
                        _ms(cpu_driver, 2),
                    ]
                )
                + " |"
            )
    return lines


def gc_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | variant | full collections per 1,000 ops | ms of full GC per op "
        "| longest full GC (ms) |",
        "|---|---|---|---|---|",
    ]
    for scenario in HEADLINE_ORDER:
        for variant in SHOWN:
            load = _headline_load(results, scenario, variant, "canned", 16)
            if load is None or "gc" not in load or not load["ops"]:
                continue
            gc = load["gc"]
            lines.append(
                f"| {scenario} | {VARIANT_NAMES[variant]} "
                f"| {1000 * gc['full_collections'] / load['ops']:.1f} "
                f"| {1000 * gc['full_seconds'] / load['ops']:.2f} "
                f"| {1000 * gc['longest_full']:.0f} |"
            )
    return lines


def ratio_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | server CPU/op GraphQL/direct | GraphQL/REST | p50 c1 GraphQL/direct "
        "| GraphQL/REST | ops/s c16 GraphQL/direct | GraphQL/REST | p50 c1 on moto GraphQL/REST |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in HEADLINE_ORDER:
        loads = {v: _headline_load(results, scenario, v, "canned", 16) for v in VARIANTS}
        singles = {v: _headline_load(results, scenario, v, "canned", 1) for v in VARIANTS}
        moto = {v: _headline_load(results, scenario, v, "moto", 1) for v in VARIANTS}
        if loads["graphql"] is None:
            continue
        cpu = {v: per_op(loads[v], "server_cpu_s") for v in VARIANTS}
        p50 = {v: _p50(singles[v]) for v in VARIANTS}
        tput = {v: _field(loads[v], "throughput") for v in VARIANTS}
        moto_p50 = {v: _p50(moto[v]) for v in VARIANTS}
        lines.append(
            f"| {scenario} | {_ratio(cpu['graphql'], cpu['direct'])} "
            f"| {_ratio(cpu['graphql'], cpu['rest'])} "
            f"| {_ratio(p50['graphql'], p50['direct'])} | {_ratio(p50['graphql'], p50['rest'])} "
            f"| {_ratio(tput['graphql'], tput['direct'])} "
            f"| {_ratio(tput['graphql'], tput['rest'])} "
            f"| {_ratio(moto_p50['graphql'], moto_p50['rest'])} |"
        )
    return lines


def _before_scenarios(results: dict[str, Any]) -> list[str]:
    return [s for s in HEADLINE_ORDER if _headline_load(results, s, BEFORE, "canned", 16)]


def _full_gcs(load: dict[str, Any] | None) -> float | None:
    if load is None or "gc" not in load or not load["ops"]:
        return None
    return 1000 * float(load["gc"]["full_collections"]) / int(load["ops"])


def _full_gc_ms(load: dict[str, Any] | None) -> float | None:
    if load is None or "gc" not in load or not load["ops"]:
        return None
    return 1000 * float(load["gc"]["full_seconds"]) / int(load["ops"])


# (row label, concurrency of the load run it is read from, value, digits)
MEASURES: tuple[tuple[str, int, Any, int], ...] = (
    ("p50 c1 (ms)", 1, _p50, 1),
    ("p99 c1 (ms)", 1, lambda load: None if load is None else load["latency_ms"]["p99"], 1),
    ("ops/s c16", 16, lambda load: _field(load, "throughput"), 0),
    ("server CPU ms/op (c16)", 16, lambda load: per_op(load, "server_cpu_s"), 2),
    ("full GCs per 1,000 requests (c16)", 16, _full_gcs, 1),
    ("ms of full GC per request (c16)", 16, _full_gc_ms, 2),
)


def before_after_table(results: dict[str, Any]) -> list[str]:
    """GraphQL before and after, with REST and direct beside it, from the same run."""
    lines = [
        "| scenario | measure | direct | REST | GraphQL before | GraphQL after | after/before "
        "| GraphQL/REST before → after | GraphQL/direct before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    columns = ("direct", "rest", BEFORE, "graphql")
    for scenario in _before_scenarios(results):
        for label, concurrency, measure, digits in MEASURES:
            value = {
                variant: measure(_headline_load(results, scenario, variant, "canned", concurrency))
                for variant in columns
            }
            old, new = value[BEFORE], value["graphql"]
            cells = [
                scenario,
                label,
                *(_ms(value[variant], digits) for variant in columns),
                _ratio(new, old),
                f"{_ratio(old, value['rest'])} → {_ratio(new, value['rest'])}",
                f"{_ratio(old, value['direct'])} → {_ratio(new, value['direct'])}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _trusted_scenarios(results: dict[str, Any]) -> list[str]:
    return [s for s in HEADLINE_ORDER if _headline_load(results, s, TRUSTED, "canned", 16)]


def _same_counts(results: dict[str, Any], scenario: str) -> str:
    graphql, trusted = (
        _find(results["counts"], dataset="main", scenario=scenario, variant=variant)
        for variant in ("graphql", TRUSTED)
    )
    if graphql is None or trusted is None:
        return "-"
    same = (graphql["requests"], graphql["waves"]) == (trusted["requests"], trusted["waves"])
    return _count_cell(trusted) + ("" if same else f" (GraphQL: {_count_cell(graphql)})")


def trusted_section(results: dict[str, Any]) -> list[str]:
    """The trusted-documents variant beside GraphQL and REST, from the same run."""
    scenarios = _trusted_scenarios(results)
    if not scenarios:
        return []
    lines = [
        "## Trusted documents (the fast path), one run",
        "",
        "*GraphQL (trusted documents)* is the service started with `TRUSTED_DOCUMENTS_ONLY=true` "
        "and a manifest of the GraphQL variant's own documents (`TRUSTED_DOCUMENTS_MANIFESTS`); "
        "its client sends each document's id as `documentId` instead of its text, so the "
        "service skips the document cache and runs the plan it made at startup (see "
        "docs/trusted-documents.md). Same documents, same data, same canned engine as *GraphQL*; "
        "measured right after it on every headline scenario but delete.",
        "",
        "| scenario | DynamoDB requests / waves | server CPU ms/op GraphQL | trusted | REST "
        "| trusted/GraphQL | trusted/REST | GraphQL/REST | ops/s c16 trusted/REST "
        "| p50 c1 trusted/REST |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        many = {v: _headline_load(results, scenario, v, "canned", 16) for v in SHOWN}
        one = {v: _headline_load(results, scenario, v, "canned", 1) for v in SHOWN}
        cpu = {v: per_op(load, "server_cpu_s") for v, load in many.items()}
        tput = {v: _field(load, "throughput") for v, load in many.items()}
        p50 = {v: _p50(load) for v, load in one.items()}
        cells = [
            scenario,
            "mixed" if scenario == "mixed" else _same_counts(results, scenario),
            _ms(cpu["graphql"], 2),
            _ms(cpu[TRUSTED], 2),
            _ms(cpu["rest"], 2),
            _ratio(cpu[TRUSTED], cpu["graphql"]),
            _ratio(cpu[TRUSTED], cpu["rest"]),
            _ratio(cpu["graphql"], cpu["rest"]),
            _ratio(tput[TRUSTED], tput["rest"]),
            _ratio(p50[TRUSTED], p50["rest"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _load_range(results: dict[str, Any], variant: str) -> str:
    values = [
        float(load["loadavg"])
        for load in results["loads"]
        if load["variant"] == variant
        and load["engine"] == "canned"
        and load["headline"]
        and "loadavg" in load
        and load["scenario"] in _before_scenarios(results)
    ]
    return f"{min(values):.1f} to {max(values):.1f}" if values else "-"


def _verdict(value: float | None, limit: float, *, at_least: bool) -> str:
    if value is None:
        return "not measured"
    met = value >= limit if at_least else value <= limit
    return "met" if met else "not met"


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets, canned engine: GraphQL as it is (and with trusted documents, where
    measured) against the REST baseline, side by side in this run."""

    def ratio(
        scenario: str,
        variant: str,
        concurrency: int,
        measure: Callable[[dict[str, Any] | None], float | None],
    ) -> float | None:
        mine = measure(_headline_load(results, scenario, variant, "canned", concurrency))
        theirs = measure(_headline_load(results, scenario, "rest", "canned", concurrency))
        return mine / theirs if mine and theirs else None

    def cpu(load: dict[str, Any] | None) -> float | None:
        return per_op(load, "server_cpu_s")

    def throughput(load: dict[str, Any] | None) -> float | None:
        return _field(load, "throughput")

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    lines = []
    for title, concurrency, measure, limit, at_least in (
        ("server CPU per request", 16, cpu, CPU_TARGET, False),
        ("throughput at concurrency 16", 16, throughput, THROUGHPUT_TARGET, True),
        ("p50 at concurrency 1", 1, _p50, LATENCY_TARGET, False),
    ):
        cells = []
        met = {"graphql": 0, TRUSTED: 0}
        for scenario in TARGET_SCENARIOS:
            plain = ratio(scenario, "graphql", concurrency, measure)
            trusted = ratio(scenario, TRUSTED, concurrency, measure)
            verdicts = {
                variant: _verdict(value, limit, at_least=at_least)
                for variant, value in (("graphql", plain), (TRUSTED, trusted))
            }
            for variant, verdict in verdicts.items():
                met[variant] += verdict == "met"
            cells.append(
                f"{scenario} {shown(plain)} ({verdicts['graphql']}), trusted documents "
                f"{shown(trusted)} ({verdicts[TRUSTED]})"
            )
        bound = "at least" if at_least else "at most"
        lines.append(
            f"- **Target: {title}, GraphQL / REST, {bound} {limit}x.** Met on "
            f"{met['graphql']} of {len(TARGET_SCENARIOS)} (trusted documents: "
            f"{met[TRUSTED]} of {len(TARGET_SCENARIOS)}): " + "; ".join(cells) + "."
        )
    return lines


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _floor_multiples(results: dict[str, Any], variant: str) -> dict[str, float | None]:
    """Each scenario's server CPU per request (canned, c16) over the floor's."""
    floor = per_op(_headline_load(results, FLOOR_SCENARIO, FLOOR, "canned", 16), "server_cpu_s")
    multiples: dict[str, float | None] = {}
    for scenario in HEADLINE_ORDER:
        mine = per_op(_headline_load(results, scenario, variant, "canned", 16), "server_cpu_s")
        multiples[scenario] = mine / floor if mine and floor else None
    return multiples


def floor_targets(results: dict[str, Any]) -> list[str]:
    """The floor target, and every scenario as a multiple of the floor, for the summary."""
    if _headline_load(results, FLOOR_SCENARIO, FLOOR, "canned", 16) is None:
        return []
    floor = per_op(_headline_load(results, FLOOR_SCENARIO, FLOOR, "canned", 16), "server_cpu_s")
    graphql = _floor_multiples(results, "graphql")
    cells = []
    for scenario in FLOOR_TARGET_SCENARIOS:
        mine = per_op(_headline_load(results, scenario, "graphql", "canned", 16), "server_cpu_s")
        verdict = _verdict(graphql[scenario], FLOOR_TARGET, at_least=False)
        cells.append(
            f"{scenario} {_times(graphql[scenario])} ({_ms(mine, 2)} ms against "
            f"{_ms(floor, 3)} ms): **{verdict}**"
        )

    def listed(variant: str) -> str:
        multiples = _floor_multiples(results, variant)
        return ", ".join(
            f"{scenario} {_times(value)}"
            for scenario, value in multiples.items()
            if value is not None and scenario != "delete"
        )

    return [
        f"- **Target: server CPU per request at most {FLOOR_TARGET:.0f}x the floor's** (a "
        "bare Starlette endpoint answering the same home JSON; canned engine, concurrency 16): "
        + "; ".join(cells)
        + ".",
        f"- Server CPU per request as a multiple of the floor's: GraphQL {listed('graphql')}; "
        f"REST {listed('rest')}; direct (the storage calls alone) {listed('direct')}.",
    ]


def floor_section(results: dict[str, Any]) -> list[str]:
    floor_load = _headline_load(results, FLOOR_SCENARIO, FLOOR, "canned", 16)
    if floor_load is None:
        return []
    floor_cpu = per_op(floor_load, "server_cpu_s")
    floor_p50 = _p50(_headline_load(results, FLOOR_SCENARIO, FLOOR, "canned", 1))
    columns = ("rest", "graphql", TRUSTED)
    lines = [
        "## Against the floor",
        "",
        "*floor* is benchmarks/floor.py: a bare Starlette endpoint served by the same uvicorn "
        "settings, which takes the home request (same body, same headers) and answers the "
        f"service's own answer to it, captured in this run ({results.get('floor_body_bytes', 0):,}"
        " bytes), with no authentication, no storage and no GraphQL. Server CPU per request "
        "(canned engine, concurrency 16) and p50 at concurrency 1, each scenario's over the "
        "floor's home request.",
        "",
        "| scenario | server CPU ms/op floor | REST | GraphQL | trusted | REST/floor "
        "| GraphQL/floor | trusted/floor | p50 c1 ms floor | REST/floor | GraphQL/floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in HEADLINE_ORDER:
        loads = {v: _headline_load(results, scenario, v, "canned", 16) for v in columns}
        if loads["graphql"] is None:
            continue
        cpu = {v: per_op(load, "server_cpu_s") for v, load in loads.items()}
        p50 = {v: _p50(_headline_load(results, scenario, v, "canned", 1)) for v in columns}
        cells = [
            scenario,
            _ms(floor_cpu, 3),
            *(_ms(cpu[v], 2) for v in columns),
            *(_ratio(cpu[v], floor_cpu) for v in columns),
            _ms(floor_p50, 2),
            _ratio(p50["rest"], floor_p50),
            _ratio(p50["graphql"], floor_p50),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", *layers_section(results)]


def layers_section(results: dict[str, Any]) -> list[str]:
    rows = results.get("layers") or []
    if not rows:
        return []
    bare = float(rows[0]["us_per_request"])
    lines = [
        "### What each layer of a request adds to the floor",
        "",
        "benchmarks/layers.py: the floor's endpoint, then the service's own layers stacked on "
        "it one at a time as graphql_api.app builds them (outermost first), then the Context "
        "and dataloaders the GraphQL endpoint builds for each request; each stack called "
        "in-process as uvicorn calls it, with the home request and its real token (no HTTP "
        "parsing, no socket: the server's own, the same for every variant). Process CPU per "
        "request, median of the rounds.",
        "",
        "| stack | µs per request | added by the layer | as a multiple of the bare endpoint |",
        "|---|---|---|---|",
    ]
    previous: float | None = None
    for row in rows:
        micros = float(row["us_per_request"])
        added = "-" if previous is None else f"{micros - previous:+.1f}"
        lines.append(f"| {row['layer']} | {micros:.1f} | {added} | {micros / bare:.1f}x |")
        previous = micros
    return [*lines, ""]


def sweep_points(results: dict[str, Any], axis: str) -> list[tuple[int, str]]:
    points = {
        (int(value), row["dataset"])
        for row in results["counts"]
        for name, value in row["sweep"]
        if name == axis
    }
    return sorted(points)


def sweep_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| axis | size | scenario | variant | DynamoDB requests / waves | items returned "
        "| p50 canned c1 (ms) | server CPU ms/op (canned) | moto latency (ms, n) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for axis, label in (
        ("history", "messages"),
        ("branches", "branches"),
        ("conversations", "conversations"),
    ):
        for size, dataset in sweep_points(results, axis):
            for scenario in ("home", "open"):
                for variant in VARIANTS:
                    count, canned, moto = _scale_point(
                        results, dataset=dataset, scenario=scenario, variant=variant
                    )
                    moto_cell = "-"
                    if moto is not None:
                        moto_cell = f"{_ms(moto['latency_ms']['p50'])} (n={moto['ops']})"
                    elif count is not None:
                        samples = count["latency_ms"]
                        moto_cell = f"{_ms(sorted(samples)[len(samples) // 2])} (n={len(samples)})"
                    lines.append(
                        f"| {axis} | {size:,} {label} | {scenario} | {VARIANT_NAMES[variant]} "
                        f"| {_count_cell(count)} "
                        f"| {'' if count is None else count['items'][0]} "
                        f"| {_ms(None if canned is None else canned['latency_ms']['p50'])} "
                        f"| {_ms(per_op(canned, 'server_cpu_s'), 2)} | {moto_cell} |"
                    )
    return lines


def notes(results: dict[str, Any]) -> list[str]:
    lines = [f"- {note}" for note in results["notes"]]
    fallbacks: dict[str, int] = {}
    misses = 0
    for load in results["loads"]:
        if load["engine"] != "canned":
            continue
        replay = load["engine_counts"].get("replay", {})
        misses += int(replay.get("miss", 0))
        if replay.get("fallback"):
            fallbacks[load["scenario"]] = fallbacks.get(load["scenario"], 0) + int(
                replay["fallback"]
            )
    if misses:
        lines.append(f"- The canned engine had no recorded answer for {misses} requests.")
    if fallbacks:
        listed = ", ".join(f"{k} ({v:,})" for k, v in sorted(fallbacks.items()))
        lines.append(
            "- Canned answers by fallback (writes carry fresh ids and timestamps, so they are "
            f"answered with the same item's or operation's recorded success): {listed}."
        )
    return lines


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    return f"{ordered[0]:.1f}x to {ordered[-1]:.1f}x (median {median:.1f}x)"


def summary(results: dict[str, Any]) -> list[str]:
    """The headline ratios across scenarios, canned engine."""
    cpu: dict[str, list[float]] = {"direct": [], "rest": []}
    throughput: dict[str, list[float]] = {"direct": [], "rest": []}
    for scenario in HEADLINE_ORDER:
        graphql = _headline_load(results, scenario, "graphql", "canned", 16)
        mine = per_op(graphql, "server_cpu_s")
        for other in ("direct", "rest"):
            load = _headline_load(results, scenario, other, "canned", 16)
            theirs = per_op(load, "server_cpu_s")
            if mine and theirs:
                cpu[other].append(mine / theirs)
            if graphql and load and load["throughput"]:
                throughput[other].append(graphql["throughput"] / load["throughput"])
    trusted = []
    for scenario in _trusted_scenarios(results):
        mine = per_op(_headline_load(results, scenario, TRUSTED, "canned", 16), "server_cpu_s")
        theirs = per_op(_headline_load(results, scenario, "rest", "canned", 16), "server_cpu_s")
        if mine and theirs:
            trusted.append(mine / theirs)
    loads = [load["loadavg"] for load in results["loads"] if "loadavg" in load]
    lines = [
        *floor_targets(results),
        *targets(results),
        f"- Server CPU per operation, GraphQL vs REST: {_spread(cpu['rest'])}; "
        f"GraphQL vs direct: {_spread(cpu['direct'])}; GraphQL with trusted documents vs "
        f"REST: {_spread(trusted)} (canned engine, concurrency 16).",
        f"- Throughput at concurrency 16, GraphQL vs REST: {_spread(throughput['rest'])}; "
        f"vs direct: {_spread(throughput['direct'])} (canned engine; on moto all three tie).",
    ]
    if loads:
        lines.append(
            f"- 1-minute load average during the load runs: {min(loads):.1f} to "
            f"{max(loads):.1f} on {results['machine']['nproc']} CPUs."
        )
    return lines


def _per_screen(parse: dict[str, float], parser: str) -> str:
    """Milliseconds to parse the 52 to 60 timestamps of one screen."""
    if parser not in parse:
        return "-"
    return f"{52 * parse[parser] / 1000:.2f} to {60 * parse[parser] / 1000:.2f}"


def before_after_section(results: dict[str, Any]) -> list[str]:
    scenarios = _before_scenarios(results)
    if not scenarios:
        return []
    switches = " and ".join(f"`{name}={value}`" for name, value in BEFORE_ENV.items())
    parse = results.get("timestamp_parse_us", {})
    return [
        "## Before and after, one run",
        "",
        f"*GraphQL before* is the same service started with {switches}: no cache of parsed and "
        "validated query documents, no `gc.freeze()` after startup, and every DynamoDB call "
        "going botocore's whole way (no fast path). It ran in this run, on "
        "the same seeded data and the same canned engine, right after *GraphQL* (after) on "
        f"each of {', '.join(scenarios)}; it is not measured on moto, on the scale datasets or "
        "for delete. 1-minute load average during these canned runs: "
        f"{_load_range(results, BEFORE)} (before), {_load_range(results, 'graphql')} (after), "
        f"{_load_range(results, 'rest')} (REST) on {results['machine']['nproc']} CPUs.",
        "",
        "The third change, `parse_timestamp` reading stored timestamps with "
        "`datetime.fromisoformat` instead of `strptime`, has no switch: *GraphQL before* has it "
        "too, and so do REST and direct, which share the storage code. So it does not show "
        "here and does not change the GraphQL/REST gap. Measured apart in this run: "
        f"{_ms(parse.get('strptime'), 2)} µs per timestamp with strptime, "
        f"{_ms(parse.get('fromisoformat'), 2)} µs with fromisoformat; a message carries one and "
        "a conversation two, so opening a conversation (50 messages) parses 52 and the home "
        f"screen (20 conversations, 20 last messages) 60: {_per_screen(parse, 'strptime')} ms "
        f"of CPU per screen before, {_per_screen(parse, 'fromisoformat')} ms now, on every "
        "variant.",
        "",
        "The REST baseline does not freeze its startup objects; direct is the load generator's "
        "own process, so its GC figures are the load generator's.",
        "",
        *before_after_table(results),
        "",
    ]


def _storage_scenarios(results: dict[str, Any]) -> list[str]:
    return [s for s in HEADLINE_ORDER if _headline_load(results, s, DIRECT_BEFORE, "canned", 16)]


def storage_before_after_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | measure | direct before | direct after | after/before |",
        "|---|---|---|---|---|",
    ]
    for scenario in _storage_scenarios(results):
        for label, concurrency, measure, digits in MEASURES:
            old, new = (
                measure(_headline_load(results, scenario, variant, "canned", concurrency))
                for variant in (DIRECT_BEFORE, "direct")
            )
            lines.append(
                f"| {scenario} | {label} | {_ms(old, digits)} | {_ms(new, digits)} "
                f"| {_ratio(new, old)} |"
            )
        counts = [
            _find(results["counts"], dataset="main", scenario=scenario, variant=variant)
            for variant in (DIRECT_BEFORE, "direct")
        ]
        if all(counts):
            cells = " | ".join(_count_cell(count) for count in counts)
            lines.append(f"| {scenario} | DynamoDB requests / waves (moto) | {cells} | same |")
    return lines


def storage_targets(results: dict[str, Any]) -> list[str]:
    cells = []
    for scenario in STORAGE_TARGET_SCENARIOS:
        old, new = (
            per_op(_headline_load(results, scenario, variant, "canned", 16), "server_cpu_s")
            for variant in (DIRECT_BEFORE, "direct")
        )
        ratio = new / old if new and old else None
        verdict = _verdict(ratio, STORAGE_CPU_TARGET, at_least=False)
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        cells.append(f"{scenario} {shown} ({_ms(old, 2)} → {_ms(new, 2)} ms): **{verdict}**")
    return [
        f"- **Target: the storage layer's own CPU per operation (direct) at most "
        f"{STORAGE_CPU_TARGET}x of the same calls without the DynamoDB fast path.** "
        + "; ".join(cells)
        + " (canned engine, concurrency 16)."
    ]


def storage_section(results: dict[str, Any]) -> list[str]:
    if not _storage_scenarios(results):
        return []
    return [
        "## The storage layer before and after, one run",
        "",
        "*direct before* is the direct variant's storage calls on a DynamoDB client opened "
        "with `DYNAMODB_FAST_PATH=false`: every call goes botocore's whole way (generic "
        "serializer, request signer, response parser); *direct* is the same calls with the "
        "fast path (graphql_api/storage/fast_path.py). Both run in the load generator's own "
        "process, one right after the other on each scenario, on the same canned engine; it "
        "freezes its startup objects (`gc.freeze()`) after opening each client, as the service "
        "does. The run stops if the two send different DynamoDB requests for the same actions "
        "(counted on moto).",
        "",
        *storage_targets(results),
        "",
        *storage_before_after_table(results),
        "",
    ]


def write_report(results: dict[str, Any], output_dir: Path) -> None:
    plots = write_plots(results, output_dir)
    machine = results["machine"]
    hop = results.get("proxy_hop_ms", {})
    datasets = {row["name"]: row for row in results["datasets"]}
    main = datasets.get("main", {})
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` ({'quick mode' if results['config']['quick'] else 'full run'}"
        f", {results['seconds']:.0f} s) on {time.strftime('%Y-%m-%d')}. Regenerate with "
        "`make bench`; `BENCH_QUICK=1 make bench` is a smoke run (written to the temporary "
        "directory's bench-quick/ unless BENCH_OUTPUT_DIR names another).",
        "",
        f"**Code:** {machine.get('code', 'unknown')}. "
        f"**Machine:** {machine['nproc']} CPUs ({machine['cpu_model']}), Python "
        f"{machine['python']}, {machine['platform']}. uvicorn {machine['versions'].get('uvicorn')}"
        f" with {machine.get('uvicorn', '?')}; strawberry "
        f"{machine['versions'].get('strawberry-graphql')}, starlette "
        f"{machine['versions'].get('starlette')}, moto {machine['versions'].get('moto')}. "
        f"Load average {machine['loadavg_start'][0]:.2f} at the start, "
        f"{machine['loadavg_end'][0]:.2f} at the end (other work shares these cores).",
        "",
        "**Processes, all on 127.0.0.1:** the server under test (uvicorn, 1 worker), the "
        "DynamoDB engine, the counting engine in front of it, and the load generator (an "
        "asyncio aiohttp client, which also runs the direct variant). They share the 2 cores, "
        "so the load generator's and the engine's CPU per operation are reported beside the "
        "server's.",
        "",
        "**Engines.** *moto*: moto's server in its own process, one request at a time, reached "
        f"through the counting engine (which adds {_ms(hop.get('via_counting_engine'), 2)} ms vs "
        f"{_ms(hop.get('engine'), 2)} ms for a GetItem, p50). *canned*: the counting engine "
        "answering every request with moto's answer recorded for the same request in this run "
        "(benchmarks/canned_engine.py), so the engine costs next to nothing and the service's "
        "own cost is what is measured. moto serves one request at a time, so its throughput "
        "at concurrency 16 is moto's, whatever the variant: compare throughput on *canned*.",
        "",
        "**Variants**, same seeded data, same run: *floor* is a bare Starlette endpoint "
        "answering the home request with the service's own answer to it (see Against the "
        "floor); *direct* is the storage calls in-process (benchmarks/operations.py, no HTTP, "
        "no auth: the storage layer alone); *REST* is "
        "benchmarks/rest_baseline.py, a Starlette JSON endpoint per screen with the same "
        "Cognito token verification and the same storage calls; *GraphQL* is the service "
        "(graphql_api.app.create_app) with its default settings; *GraphQL (before)* is the same "
        "service with this round's optimisations switched off (see Before and after); "
        "*GraphQL (trusted documents)* is the service serving trusted documents only, its "
        "client sending the same documents by id (see Trusted documents).",
        "",
        f"**Headline data** (`main`): one user with {main.get('conversations', '?')} "
        f"conversations; the opened one has {main.get('focus_history', '?'):,} messages, "
        "writes go round-robin to 16 others. Delete removes a conversation of "
        f"{datasets.get('delete', {}).get('victim_history', 0):,} messages.",
        "",
        "## Summary",
        "",
        *summary(results),
        "",
        *floor_section(results),
        *before_after_section(results),
        *storage_section(results),
        *trusted_section(results),
        "## DynamoDB requests per operation",
        "",
        "Exact: counted at the engine, one operation at a time (`requests / waves`; a wave is "
        "a set of requests in flight together, so waves are sequential round trips).",
        "",
        *counts_table(results),
        "",
        "## Latency (ms), throughput and CPU per operation, canned engine",
        "",
        *latency_table(results, "canned"),
        "",
        "## Ratios of GraphQL (after) (canned engine; c16 for CPU and throughput, c1 for latency)",
        "",
        *ratio_table(results),
        "",
        "## Full garbage collections (canned engine, concurrency 16)",
        "",
        "A full (generation 2) collection walks every object the process holds and stalls "
        "every request in flight meanwhile; it runs more often the more reference cycles each "
        "request leaves behind. For the direct variant the process is the load generator.",
        "",
        *gc_table(results),
        "",
        "## Latency (ms) and CPU per operation on moto",
        "",
        "Engine-bound: moto copies the table in every transaction and scans the table in "
        "every Query.",
        "",
        *latency_table(results, "moto"),
        "",
        "## Cost grows with page size, not history",
        "",
        "Each size is its own table (and own user). DynamoDB requests per operation and the "
        "service's CPU per operation stay flat from 10 to 100,000 messages and from 10 to "
        "10,000 conversations. moto's latency does not: moto's Query reads every item of the "
        "table and sorts the partition (real DynamoDB reads only the page), so on moto the "
        "big tables get only one or two timed operations, taken from the counting pass.",
        "",
        *sweep_table(results),
        "",
        *[f"![{name}]({name})" for name in plots],
        "",
    ]
    if results.get("profile"):
        lines += [
            "## Profile",
            "",
            "The hottest read (the most server CPU per operation of GraphQL before, else of "
            "GraphQL), send and the mixed scenario (every action, in the mix), on the canned "
            "engine at concurrency 16, each server sampling "
            "itself with pyinstrument: GraphQL after, GraphQL before, GraphQL with trusted "
            "documents, REST. Call trees in "
            "profile_*.txt.",
            "",
            *results["profile"],
            "",
        ]
    if results.get("profile_storage"):
        lines += [
            "## Profile of the storage calls",
            "",
            "The hottest read (the most CPU per operation of direct before) and send, on the "
            "canned engine at concurrency 16, the load generator sampling itself with "
            "pyinstrument while it runs the storage calls: direct (fast path), direct before. "
            "Call trees in profile_*_direct*.txt.",
            "",
            *results["profile_storage"],
            "",
        ]
    extra = notes(results)
    if extra:
        lines += ["## Notes", "", *extra, ""]
    (output_dir / "RESULTS.md").write_text("\n".join(lines))


# --- plots -------------------------------------------------------------------------------------


def write_plots(results: dict[str, Any], output_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    scenarios = [s for s in HEADLINE_ORDER if _headline_load(results, s, "graphql", "canned", 1)]

    def bars(name: str, title: str, ylabel: str, value: Any, log: bool = False) -> None:
        figure, axes = plt.subplots(figsize=(10, 4.5))
        shown = [v for v in SHOWN if any(value(s, v) for s in scenarios)]
        width = 0.8 / max(len(shown), 1)
        for offset, variant in enumerate(shown):
            heights = [value(s, variant) or 0.0 for s in scenarios]
            positions = [i + (offset - (len(shown) - 1) / 2) * width for i in range(len(scenarios))]
            axes.bar(positions, heights, width, label=VARIANT_NAMES[variant], color=COLORS[variant])
        axes.set_xticks(range(len(scenarios)), scenarios)
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        axes.legend()
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(output_dir / name, dpi=110)
        plt.close(figure)
        written.append(name)

    def latency(engine: str, concurrency: int, field: str) -> Any:
        def pick(scenario: str, variant: str) -> float | None:
            load = _headline_load(results, scenario, variant, engine, concurrency)
            return None if load is None else float(load["latency_ms"][field])

        return pick

    bars(
        "latency_p50_c1.png",
        "p50 latency at concurrency 1, canned engine",
        "ms (log)",
        latency("canned", 1, "p50"),
        log=True,
    )
    bars(
        "throughput_c16.png",
        "throughput at concurrency 16, canned engine",
        "operations / s",
        lambda s, v: (_headline_load(results, s, v, "canned", 16) or {}).get("throughput"),
    )
    bars(
        "server_cpu_per_op.png",
        "server CPU per operation (canned engine, concurrency 16)",
        "ms of CPU (log)",
        lambda s, v: per_op(_headline_load(results, s, v, "canned", 16), "server_cpu_s"),
        log=True,
    )
    written += sweep_plots(results, output_dir, plt)
    return written


def sweep_plots(results: dict[str, Any], output_dir: Path, plt: Any) -> list[str]:
    written = []
    for axis, label in (
        ("history", "messages in the conversation"),
        ("conversations", "conversations of the user"),
    ):
        points = sweep_points(results, axis)
        if len(points) < 2:
            continue
        figure, grid = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
        sizes = [size for size, _ in points]
        for column, scenario in enumerate(("home", "open")):
            requests_axes, latency_axes = grid[0][column], grid[1][column]
            for variant in VARIANTS:
                requests, canned, moto = [], [], []
                for _, dataset in points:
                    count, load, moto_load = _scale_point(
                        results, dataset=dataset, scenario=scenario, variant=variant
                    )
                    requests.append(math.nan if count is None else count["requests"])
                    canned.append(math.nan if load is None else load["latency_ms"]["p50"])
                    if moto_load is not None:
                        moto.append(moto_load["latency_ms"]["p50"])
                    elif count is not None:
                        samples = sorted(count["latency_ms"])
                        moto.append(samples[len(samples) // 2])
                    else:
                        moto.append(math.nan)
                color = COLORS[variant]
                name = VARIANT_NAMES[variant]
                requests_axes.plot(sizes, requests, "o-", color=color, label=name)
                latency_axes.plot(sizes, canned, "o-", color=color, label=f"{name}, canned")
                latency_axes.plot(sizes, moto, "s--", color=color, alpha=0.5, label=f"{name}, moto")
            requests_axes.set_title(f"{SCENARIOS[scenario].split(':')[0]}: DynamoDB requests/op")
            requests_axes.set_ylim(bottom=0)
            latency_axes.set_title("p50 latency, concurrency 1")
            latency_axes.set_ylabel("ms (log)")
            latency_axes.set_yscale("log")
            latency_axes.set_xlabel(label)
            for axes in (requests_axes, latency_axes):
                axes.set_xscale("log")
                axes.grid(alpha=0.3)
        grid[0][0].legend()
        grid[1][1].legend(fontsize=7)
        figure.tight_layout()
        name = f"scale_{axis}.png"
        figure.savefig(output_dir / name, dpi=110)
        plt.close(figure)
        written.append(name)
    return written
