"""docs/soak.md and its plots, from one run's scenarios (a short run: a temporary folder's)."""

from __future__ import annotations

import itertools
import math
import os
import platform
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.soak.config import SoakConfig
from tests.soak.figures import (
    MEASURED,
    Criterion,
    cpu,
    measured_seconds,
    percentile,
    samples,
    sending_rate,
    served,
    statuses,
)
from tests.soak.flood import NICENESS
from tests.soak.scenarios import (
    ABUSE_CONNECTIONS,
    ABUSE_FACTOR,
    BURST_CLIENTS,
    NORMAL_THINK_SECONDS,
    PROBE_REQUESTS,
    SIZED_LIMIT,
    STEADY_CLIENTS,
    Scenario,
)
from tests.soak.traffic import JITTER_SECONDS, TIMEOUT_SECONDS, Sample

TITLES = {
    "steady": "steady (16 clients)",
    "burst": "burst (160 clients)",
    "burst-sized": f"burst, MAX_CONCURRENT_REQUESTS={SIZED_LIMIT} (diagnostic)",
    "quiet": "20 people",
    "abused": "20 people + abuser",
    "at-budget": "20 people + a user at its budget (diagnostic)",
}
STATUS_COLORS = {"2xx": "#2ca02c", "429": "#ff7f0e", "503": "#d62728", "other": "#7f7f7f"}


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:,.0f}"


def _share(value: float) -> str:
    """A share of one core, or "-" when unknown."""
    return "-" if math.isnan(value) else f"{value:.0%}"


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _machine() -> str:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores, {cpu_model}, Python {platform.python_version()}"


def _settings_rows(scenarios: dict[str, Scenario]) -> list[str]:
    rows = [
        "| scenario | MAX_CONCURRENT_REQUESTS | ADMISSION_WAIT_SECONDS "
        "| reads / writes / appends per minute (burst) | DYNAMODB_DEADLINE_SECONDS |",
        "|---|---:|---:|---|---:|",
    ]
    for name, scenario in scenarios.items():
        settings = scenario.settings
        limits = settings.rate_limits
        budgets = (
            f"{limits.reads_per_minute:,} ({limits.reads_burst:,}) / "
            f"{limits.writes_per_minute:,} ({limits.writes_burst:,}) / "
            f"{limits.appends_per_minute:,} ({limits.appends_burst:,})"
        )
        if scenario.overrides:
            budgets = "lifted (`UNLIMITED_RATES`)"
        rows.append(
            f"| {TITLES[name]} | {settings.concurrency_limit} "
            f"| {settings.admission_wait_seconds:g} | {budgets} "
            f"| {settings.dynamodb.deadline:g} |"
        )
    return rows


def _scenario_rows(scenarios: dict[str, Scenario]) -> list[str]:
    rows = [
        "| scenario | clients | load (s) | requests | per s | 2xx | 429 | 503 | other + none "
        "| served p50 ms | p90 | p99 | service CPU | moto CPU | clients' CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scenario in scenarios.items():
        group = MEASURED[name]
        found = samples(scenario, group)
        found += samples(scenario, "abuser")
        classes = statuses(found)
        latencies = served(scenario, group)
        seconds = measured_seconds(scenario)
        used = cpu(scenario)
        rows.append(
            f"| {TITLES[name]} | {scenario.clients} | {seconds:.0f} | {len(found):,} "
            f"| {len(found) / seconds:.1f} | {classes['2xx']:,} | {classes['429']:,} "
            f"| {classes['503']:,} | {classes['other'] + classes['none']} "
            f"| {_ms(percentile(latencies, 0.5))} | {_ms(percentile(latencies, 0.9))} "
            f"| {_ms(percentile(latencies, 0.99))} | {_share(used['service'])} "
            f"| {_share(used['engine'])} | {_share(used['driver'])} |"
        )
    return rows


def _operation_rows(steady: Scenario, burst: Scenario) -> list[str]:
    rows = [
        "| operation | steady: served | p50 ms | p99 ms | burst: served | refused | p50 ms "
        "| p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    kinds = sorted({s.kind for s in samples(steady, "client") + samples(burst, "client")})
    for kind in kinds:
        cells = []
        for scenario in (steady, burst):
            found = [s for s in samples(scenario, "client") if s.kind == kind]
            ok = [s.latency for s in found if s.outcome == "ok"]
            refused = sum(s.outcome == "refused" for s in found)
            cells.append((len(ok), refused, _ms(percentile(ok, 0.5)), _ms(percentile(ok, 0.99))))
        (n1, _, a1, b1), (n2, r2, a2, b2) = cells
        rows.append(f"| {kind} | {n1:,} | {a1} | {b1} | {n2:,} | {r2:,} | {a2} | {b2} |")
    return rows


def _checked_rows(scenarios: dict[str, Scenario]) -> list[str]:
    rows = [
        "| scenario | items read | conversations | messages | streams (finished) | deltas "
        "| refused: conversations | messages | deltas | no clear answer | problems |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scenario in scenarios.items():
        v = scenario.verified
        rows.append(
            f"| {TITLES[name]} | {v.items:,} | {v.conversations:,} | {v.messages:,} "
            f"| {v.streams:,} ({v.finished:,}) | {v.deltas:,} | {v.refused_conversations:,} "
            f"| {v.refused_messages:,} | {v.refused_deltas:,} | {v.unsettled} "
            f"| {sum(v.problems.values())} |"
        )
    return rows


def _counter_rows(scenarios: dict[str, Scenario]) -> list[str]:
    rows = [
        "| scenario | 503 (clients) | `chat_api_shed_total` | 429 (clients) "
        "| `chat_api_rate_limited_total` | `chat_api_dynamodb_requests_total` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, scenario in scenarios.items():
        classes = statuses(samples(scenario))
        found = scenario.counters
        calls = found.get("chat_api_dynamodb_requests_total", 0.0)
        rows.append(
            f"| {TITLES[name]} | {classes['503']:,} | {found.get('chat_api_shed_total', 0):,.0f} "
            f"| {classes['429']:,} | {found.get('chat_api_rate_limited_total', 0):,.0f} "
            f"| {calls:,.0f} |"
        )
    return rows


def _bottleneck(scenarios: dict[str, Scenario]) -> list[str]:
    burst, steady = scenarios["burst"], scenarios["steady"]
    used, calm = cpu(burst), cpu(steady)
    served_rate = len(served(burst, "client")) / measured_seconds(burst)
    steady_rate = len(served(steady, "client")) / measured_seconds(steady)
    limit = burst.settings.concurrency_limit
    steady_p99 = percentile(served(steady, "client"), 0.99)
    unavailable = sum(s.outcome == "unavailable" for s in samples(burst, "client"))
    lines = [
        "moto applies one request at a time (graphql_api/local/moto_server.py): it is the first "
        f"bottleneck. In the steady soak moto used {_share(calm['engine'])} of a core and the "
        f"service {_share(calm['service'])}, and the service served {steady_rate:.1f} "
        f"requests/s; in the burst, ten times the clients, it served {served_rate:.1f}/s "
        f"(moto {_share(used['engine'])}, the service {_share(used['service'])}): past moto's "
        "rate, more clients only queue. (moto's share stays under a whole core where the "
        "machine's other load takes the rest.)",
        "",
        f"The service admits at most MAX_CONCURRENT_REQUESTS = {limit} at once (the default: "
        "the DynamoDB pool's size), fewer while admitted requests hold their places longer "
        "than half of DYNAMODB_DEADLINE_SECONDS (graphql_api/admission.py: a late request "
        "halves the places, requests in time give them back one per round, as TCP's window), "
        f"and answers the rest 503 after {burst.settings.admission_wait_seconds:g} s. In the "
        f"burst it shed {statuses(samples(burst, 'client'))['503']:,} requests up front; of "
        f"those it admitted, {unavailable} ended SERVICE_UNAVAILABLE at their deadline, and "
        f"the served ones took {_ms(percentile(served(burst, 'client'), 0.5))} ms at p50 and "
        f"{_ms(percentile(served(burst, 'client'), 0.99))} ms at p99, against "
        f"{_ms(steady_p99)} ms for the steady soak's p99. (With the places fixed at {limit}, "
        "the first run of this soak admitted requests that queued in moto past their "
        "deadline: 129 ended SERVICE_UNAVAILABLE.) On DynamoDB, which answers many requests "
        "at once in milliseconds, the places stay at the ceiling and the service's own CPU "
        "comes first.",
    ]
    sized = scenarios.get("burst-sized")
    if sized is not None:
        sized_p99 = percentile(served(sized, "client"), 0.99)
        rate = len(served(sized, "client")) / measured_seconds(sized)
        lines += [
            "",
            f"The diagnostic run shows it: the same burst with MAX_CONCURRENT_REQUESTS = "
            f"{sized.settings.concurrency_limit} served {rate:.1f} requests/s with a p99 of "
            f"{_ms(sized_p99)} ms, {sized_p99 / steady_p99:.2f}x the steady soak's, and shed "
            f"{statuses(samples(sized, 'client'))['503']:,} requests.",
        ]
    return lines


def write_report(
    config: SoakConfig,
    scenarios: dict[str, Scenario],
    verdicts: Sequence[Criterion],
    *,
    load_average: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> None:
    config.plots.mkdir(parents=True, exist_ok=True)
    plots = write_plots(scenarios, config.plots)
    steady, burst = scenarios["steady"], scenarios["burst"]
    probe = samples(burst, "probe")
    probe_ok = [s.latency for s in probe if s.outcome == "ok"]
    peak = max(r.service_rss_mib for r in burst.readings)
    problems: Counter[str] = Counter()
    described: list[str] = []
    for scenario in scenarios.values():
        problems.update(scenario.recorder.problems)
        described += scenario.recorder.described + scenario.verified.described
    folder = config.plots.name
    lines = [
        "# Soak test",
        "",
        "Generated by `make soak` (tests/soak/); re-run to refresh. `make soak-short` runs the "
        "same scenarios briefly (no diagnostic burst) and writes its report to "
        "test-artifacts/soak-short/, never here.",
        "",
        f"- Machine: {_machine()}; load average {load_average[0][0]:.1f} at the start, "
        f"{load_average[1][0]:.1f} at the end (1 minute).",
        "- Service: `chat-history-api serve`, one uvicorn worker in its own process (uvicorn's "
        "defaults: backlog 2048, no `--limit-concurrency`, keep-alive 5 s), one process and one "
        "fresh table per scenario, every setting at its default but those below.",
        "- DynamoDB: moto in a process of its own on loopback, applying one request at a time "
        "(the dev stack's engine).",
        f"- Clients: httpx in the test process, {TIMEOUT_SECONDS:g} s timeout, no think time "
        f"(steady and burst) or {NORMAL_THINK_SECONDS:g} s on average (the 20 people). After a "
        f"429 or 503 a client waits Retry-After plus up to {JITTER_SECONDS:g} s, then goes on "
        "with a new operation and new ids (a stream sends its refused step again). Mix: "
        "reads (home, open) about two thirds, writes (create, add, add two, rename), and "
        "answers streamed (start, 2 to 4 appends, finish).",
        "- Run time (from each service's start to its table's check): "
        + ", ".join(f"{TITLES[n]} {s.wall_seconds:.0f} s" for n, s in scenarios.items())
        + ".",
        f"- Each scenario: {config.seconds:g} s of load (SOAK_SECONDS) after a warm-up. "
        f"Steady: {STEADY_CLIENTS} clients of 4 users. Burst: {BURST_CLIENTS} clients of 40 "
        f"users at once after a warm-up at {STEADY_CLIENTS}, then the load stops and "
        f"{PROBE_REQUESTS} requests follow one by one. Abuse: 20 people alone, then 20 "
        f"people beside one user sending addMessage at {ABUSE_FACTOR}x its write budget "
        "without waiting (two processes and tables alike, one after the other).",
        "",
        *_settings_rows(scenarios),
        "",
        "## The criteria",
        "",
        "Correctness is asserted by the test; the latency bounds are reported only (tests "
        "do not pass or fail on wall-clock time).",
        "",
        "| criterion | figure | met |",
        "|---|---|---|",
        *(
            f"| {c.name} | {c.figure} | {'yes' if c.met else '**no**'}"
            f"{'' if c.asserted else ' (reported)'} |"
            for c in verdicts
        ),
        "",
        "## Scenarios",
        "",
        "Served: answered 2xx without errors. The rows of the 20 people count the other user's "
        "requests too; their latencies are the 20 people's. CPU: share of one core over the "
        "measured load.",
        "",
        *_scenario_rows(scenarios),
        "",
        "### Served latency by operation, steady and burst",
        "",
        *_operation_rows(steady, burst),
        "",
        "## The first bottleneck",
        "",
        *_bottleneck(scenarios),
        "",
        "## After the burst",
        "",
        f"- The next {PROBE_REQUESTS} requests (one at a time, reads and writes, the 40 users in "
        f"turn): {len(probe_ok)} of {len(probe)} served, p50 "
        f"{_ms(percentile(probe_ok, 0.5))} ms, p99 {_ms(percentile(probe_ok, 0.99))} ms.",
        f"- Service RSS: {burst.rss_before or math.nan:.1f} MiB before the burst (idle, after "
        f"the warm-up), {peak:.1f} MiB at most during it, {burst.rss_after or math.nan:.1f} "
        "MiB after the probe (idle).",
        "- What the growth is made of, from a diagnostic run of this burst (2026-12-08; the "
        "service's own counts before the burst and after the probe, read in the process: "
        "`sys._debugmallocstats()`, `sys.getallocatedblocks()`, glibc's `mallinfo2`, then "
        "`malloc_trim(0)`): RSS 98.7 to 104.1 MiB (+5.5%), while the bytes in live Python "
        "blocks went from 49.79 to 49.93 MB (+0.3%) and glibc's bytes in use from 20.7 to "
        "20.8 MiB. The rest is the allocators keeping what the burst freed: pymalloc held 56 "
        "arenas of 1 MiB against 52, with 4.7 MB of free blocks in them against 2.5 (its "
        "high-water mark: CPython returns an arena only when every block in it is free), "
        "glibc 1.1 MiB more on its free lists, of which `malloc_trim(0)` gave back 1 MiB. No "
        "cache, budget or connection buffer is left holding the burst: live objects are back "
        "where they were.",
        "",
        "## One abusive user",
        "",
        *_abuse_section(scenarios),
        "",
        "## Writes checked item by item",
        "",
        "Read straight from the table after each scenario (one consistent Scan), against the "
        "ids each client chose and what the service answered: each acknowledged message has "
        "exactly one marker and one message item with the content sent, a finished stream's "
        "content is its acknowledged deltas in order, and no refused id left a marker, a "
        "message, a delta or a conversation.",
        "",
        *_checked_rows(scenarios),
        "",
        "## The service's own counters",
        "",
        *_counter_rows(scenarios),
        "",
        "## Plots",
        "",
        *(f"![{name}]({folder}/{name})" for name in plots),
        "",
    ]
    if described:
        lines += ["## Problems", "", *(f"- {line}" for line in described), ""]
    config.report.parent.mkdir(parents=True, exist_ok=True)
    config.report.write_text("\n".join(lines), encoding="utf-8")


def _classes_text(classes: Counter[str]) -> str:
    return ", ".join(f"{classes[name]:,} {name}" for name in ("2xx", "429", "503") if classes[name])


def _abuse_section(scenarios: dict[str, Scenario]) -> list[str]:
    rows = [
        "| scenario | the other user's writes: sent | per s | admitted | 429 | served p50 ms "
        "| the 20 people: requests | 429 | 503 | served p50 ms | p90 | p99 | service CPU "
        "| moto CPU | the script's CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("quiet", "abused", "at-budget"):
        if name not in scenarios:
            continue
        scenario = scenarios[name]
        people = samples(scenario, "normal")
        classes = statuses(people)
        latencies = served(scenario, "normal")
        other = samples(scenario, "abuser")
        used = cpu(scenario)
        rows.append(
            f"| {TITLES[name]} | {len(other):,} | {sending_rate(other):.1f} "
            f"| {sum(s.outcome != 'refused' for s in other):,} "
            f"| {statuses(other)['429']:,} | {_ms(percentile(served(scenario, 'abuser'), 0.5))} "
            f"| {len(people):,} | {classes['429']} | {classes['503']} "
            f"| {_ms(percentile(latencies, 0.5))} | {_ms(percentile(latencies, 0.9))} "
            f"| {_ms(percentile(latencies, 0.99))} | {_share(used['service'])} "
            f"| {_share(used['engine'])} | {_share(used['flood'])} |"
        )
    abused = scenarios["abused"]
    refused = [s.latency for s in samples(abused, "abuser") if s.outcome == "refused"]
    flooded = abused.flood
    lines = [
        f"The abuser sends addMessage at {ABUSE_FACTOR}x its write budget from a process of its "
        f"own, over {ABUSE_CONNECTIONS} connections, whatever the answers say "
        f"({flooded.skipped if flooded else 0} sends skipped with every connection waiting); "
        f"a refusal took {_ms(percentile(refused, 0.5))} ms at p50 and cost no DynamoDB "
        f"request. The script runs at nice {NICENESS}: a real one runs on its abuser's "
        "machine, and its CPU (the table's last column) would here be taken from moto and "
        "the service. Its admitted writes wait for one another (a user's writes commit one "
        "after another); the time they wait so is not counted as lateness by the admission, "
        "so one user's queue never shrinks the others' places. Those past "
        "DYNAMODB_DEADLINE_SECONDS are answered SERVICE_UNAVAILABLE.",
        "",
        *rows,
    ]
    at_budget = scenarios.get("at-budget")
    if at_budget is not None:
        quiet_p99 = percentile(served(scenarios["quiet"], "normal"), 0.99)
        beside_budget = percentile(served(at_budget, "normal"), 0.99) / quiet_p99
        beside_abuser = percentile(served(abused, "normal"), 0.99) / quiet_p99
        lines += [
            "",
            "The diagnostic row (a user writing at its budget and no faster, so refused "
            "nothing) tells what the refusals cost from what the admitted writes cost: the 20 "
            f"people's p99 was {beside_budget:.2f}x the quiet one beside it, "
            f"{beside_abuser:.2f}x beside the abuser. What the normal users feel is the "
            "abuser's admitted writes (its burst of "
            f"{at_budget.settings.rate_limits.writes_burst} at once, then its rate), applied "
            "one request at a time by moto, and the CPU the refusals and the script take on "
            "the machine's two cores; the refusals reach neither moto nor the users' queue. "
            "(moto used to deep-copy the whole table for every transaction, so each admitted "
            "write cost more as the table grew, three times as much at a thousand items; its "
            "backup now shares what the transaction cannot change.)",
        ]
    return lines


# --- plots -------------------------------------------------------------------------------------


def write_plots(scenarios: dict[str, Scenario], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (
        ("requests.png", _requests_plot),
        ("latency.png", _latency_plot),
        ("resources.png", _resources_plot),
    ):
        figure = draw(plt, scenarios)
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
        written.append(name)
    return written


def _per_second(found: Sequence[Sample], end: float) -> tuple[list[float], dict[str, list[int]]]:
    """Responses in each second, by status class, counted when they arrived."""
    seconds = list(range(math.ceil(end) + 1))
    series: dict[str, list[int]] = {name: [0] * len(seconds) for name in STATUS_COLORS}
    for sample in found:
        second = min(int(sample.at + sample.latency), len(seconds) - 1)
        status = sample.status
        name = (
            "2xx"
            if status is not None and 200 <= status < 300
            else str(status)
            if status in (429, 503)
            else "other"
        )
        series[name][second] += 1
    return [float(s) for s in seconds], series


def _requests_plot(plt: Any, scenarios: dict[str, Scenario]) -> Any:
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7))
    burst = scenarios["burst"]
    found = [s for s in burst.recorder.samples if s.group != "seed"]
    end = max(s.at + s.latency for s in found)
    seconds, series = _per_second(found, end)
    top.stackplot(
        seconds,
        *series.values(),
        labels=list(series),
        colors=list(STATUS_COLORS.values()),
        step="post",
    )
    top.axvspan(burst.start, burst.end, color="#1f77b4", alpha=0.08, label="160 clients")
    top.set_title("Burst: responses per second by status (warm-up at 16, burst, then the probe)")
    top.set_xlabel("s")
    top.set_ylabel("responses / s")
    top.legend(loc="upper right")
    abused = scenarios["abused"]
    for group, status, color, label in (
        ("normal", "2xx", "#2ca02c", "20 people: 2xx"),
        ("normal", "429", "#9467bd", "20 people: 429"),
        ("abuser", "2xx", "#1f77b4", "abuser: 2xx"),
        ("abuser", "429", "#ff7f0e", "abuser: 429"),
    ):
        chosen = samples(abused, group)
        seconds, series = _per_second(chosen, abused.end + 1)
        bottom.plot(seconds, series[status], drawstyle="steps-post", color=color, label=label)
    bottom.axvspan(abused.start, abused.end, color="#1f77b4", alpha=0.08)
    bottom.set_title(f"Abuse: one user at {ABUSE_FACTOR}x its write budget beside 20 people")
    bottom.set_xlabel("s")
    bottom.set_ylabel("responses / s (log)")
    bottom.set_yscale("symlog", linthresh=1)
    bottom.legend(loc="upper right")
    return figure


def _latency_plot(plt: Any, scenarios: dict[str, Scenario]) -> Any:
    figure, axes = plt.subplots(figsize=(12, 4.5))
    groups = [
        ("steady", "client", "steady"),
        ("burst", "client", "burst: served"),
        ("burst-sized", "client", f"burst, limit {SIZED_LIMIT}: served"),
        ("burst", "probe", "after the burst"),
        ("quiet", "normal", "20 people"),
        ("abused", "normal", "20 people + abuser"),
        ("at-budget", "normal", "20 people + a user at its budget"),
    ]
    groups = [group for group in groups if group[0] in scenarios]
    shares = ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"))
    width = 0.8 / len(shares)
    for offset, (share, label) in enumerate(shares):
        heights = [
            percentile(served(scenarios[name], group), share) * 1000 for name, group, _ in groups
        ]
        positions = [i + (offset - 1) * width for i in range(len(groups))]
        axes.bar(positions, heights, width, label=label)
    axes.set_xticks(range(len(groups)), [title for _, _, title in groups])
    axes.set_ylabel("ms (log)")
    axes.set_yscale("log")
    axes.set_title("Latency of served requests (2xx), as the clients saw it")
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    return figure


def _resources_plot(plt: Any, scenarios: dict[str, Scenario]) -> Any:
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7))
    for name, scenario in scenarios.items():
        top.plot(
            [r.at for r in scenario.readings],
            [r.service_rss_mib for r in scenario.readings],
            label=TITLES[name],
        )
    burst = scenarios["burst"]
    if burst.rss_before is not None:
        top.axhline(burst.rss_before * 1.1, color="#7f7f7f", linestyle=":", label="burst: +10%")
    top.set_title("Service RSS from each scenario's start")
    top.set_xlabel("s")
    top.set_ylabel("MiB")
    top.legend()
    readings = burst.readings
    for field, label in (
        ("service_cpu", "service"),
        ("engine_cpu", "moto"),
        ("driver_cpu", "clients (test process)"),
    ):
        times, shares = [], []
        for before, after in itertools.pairwise(readings):
            span = after.at - before.at
            if span > 0:
                times.append(after.at)
                shares.append((getattr(after, field) - getattr(before, field)) / span * 100)
        bottom.plot(times, shares, label=label)
    bottom.axvspan(burst.start, burst.end, color="#1f77b4", alpha=0.08)
    bottom.set_title("Burst: CPU by process (% of one core)")
    bottom.set_xlabel("s")
    bottom.set_ylabel("%")
    bottom.legend()
    return figure
