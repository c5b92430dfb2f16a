"""The benchmark's figures: the statistics of a server's samples, its ratios
to the C reference, to asyncio streams and (echo) to the floor with a
checkpoint on its loop, the table and the chart, where the limits (the
floors, the C server) stand apart from the libraries."""

from __future__ import annotations

import statistics
from typing import Any

from ._catalog import BASELINE, FLOOR_OF, LIMITS, MIB, REFERENCE
from ._targets import format_targets

__all__ = ["KEY_FIGURE", "format_table", "plot", "ratios", "summarize"]


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    keys = samples[0].keys()
    return {
        "median": {k: statistics.median(s[k] for s in samples) for k in keys},
        "min": {k: min(s[k] for s in samples) for k in keys},
        "max": {k: max(s[k] for s in samples) for k in keys},
        "samples": samples,
    }


# Per workload kind: the figure that ranks servers, lower or higher better.
KEY_FIGURE = {
    "echo": ("cpu_us_per_request", "lower"),
    "bulk": ("mb_per_s", "higher"),
    "idle": ("kib_per_connection", "lower"),
}


def ratios(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Per workload and server: its key figure divided by the C
    reference's (``vs_c``), by asyncio streams' (``vs_asyncio``) and, on
    the echo workloads, by the floor's with a checkpoint on the same loop
    (``vs_floor``), where those ran."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, wl in result["workloads"].items():
        key, _ = KEY_FIGURE[wl["kind"]]
        servers = wl["servers"]
        out[name] = {}
        for kind, summary in servers.items():
            mine = summary["median"][key]
            out[name][kind] = {}
            others = [("vs_c", REFERENCE), ("vs_asyncio", BASELINE)]
            if wl["kind"] == "echo" and kind in FLOOR_OF:
                others.append(("vs_floor", FLOOR_OF[kind]))
            for label, other in others:
                if other in servers and servers[other]["median"][key]:
                    out[name][kind][label] = mine / servers[other]["median"][key]
    return out


def _ordered(servers: dict[str, Any]) -> list[tuple[str, bool]]:
    """(server, is a limit): the libraries first, then the limits."""
    names = list(servers)
    return [(k, False) for k in names if k not in LIMITS] + [
        (k, True) for k in names if k in LIMITS
    ]


def format_table(result: dict[str, Any]) -> str:
    lines: list[str] = []
    rel = ratios(result)
    s = result["settings"]
    lines.append(
        f"pystream bench: {result['python']}, {s['rounds']} rounds, medians [min-max]; "
        f"servers {'pinned to one core' if result['machine']['pinned'] else 'not pinned'}"
    )
    for name, wl in result["workloads"].items():
        kind = wl["kind"]
        if kind == "echo":
            over = ", over TLS" if wl.get("tls") else ""
            title = f"{name}  (echo{over}, {wl['connections']} connection(s) x {wl['size']} B, {s['seconds']} s each)"
            header = f"{'server':<24} {'requests/s':>26} {'MB/s':>8} {'CPU us/req':>20} {'p99 us':>8} {'CPU xC':>7} {'xasyncio':>8} {'xfloor':>7}"
        elif kind == "bulk":
            title = f"{name}  ({s['bulk_bytes'] / MIB:.0f} MiB, server send_all of 64 KiB into a C reader)"
            header = f"{'server':<24} {'MB/s':>26} {'CPU us/MB':>20} {'MB/s xC':>8} {'MB/s xasyncio':>13}"
        else:
            title = f"{name}  ({wl['connections']} connections, server RSS growth)"
            header = f"{'server':<24} {'KiB per connection':>26} {'RSS MiB':>10} {'xC':>7} {'xasyncio':>9}"
        lines += ["", title, header, "-" * len(header)]
        shown_limits = False
        for server, limit in _ordered(wl["servers"]):
            if limit and not shown_limits:
                lines.append("  limits, not libraries:")
                shown_limits = True
            summary = wl["servers"][server]
            med, lo, hi = summary["median"], summary["min"], summary["max"]
            r = rel[name][server]
            xc, xa, xf = (
                f"{r[k]:.2f}" if k in r else "-" for k in ("vs_c", "vs_asyncio", "vs_floor")
            )

            def span(key: str, fmt: str, med=med, lo=lo, hi=hi) -> str:  # type: ignore[no-untyped-def]
                return f"{med[key]:{fmt}} [{lo[key]:{fmt}}-{hi[key]:{fmt}}]"

            if kind == "echo":
                lines.append(
                    f"{server:<24} {span('requests_per_s', ',.0f'):>26} {med['mb_per_s']:>8.1f} "
                    f"{span('cpu_us_per_request', '.1f'):>20} {med['p99_us']:>8.0f} {xc:>7} {xa:>8} {xf:>7}"
                )
            elif kind == "bulk":
                lines.append(
                    f"{server:<24} {span('mb_per_s', ',.0f'):>26} {span('cpu_us_per_mb', '.0f'):>20} "
                    f"{xc:>8} {xa:>13}"
                )
            else:
                lines.append(
                    f"{server:<24} {span('kib_per_connection', '.2f'):>26} {med['rss_mib']:>10.1f} "
                    f"{xc:>7} {xa:>9}"
                )
    for kind, why in result["skipped"].items():
        lines.append(f"skipped {kind}: {why}")
    lines.append("")
    lines.append(
        "CPU = the server process's user+system time in the measured window; "
        "xC and xasyncio divide a server's figure by the C reference's and asyncio streams', "
        "xfloor its CPU per request by floor-checkpoint's on the same loop."
    )
    for kind, what in result.get("limits", {}).items():
        lines.append(f"limit {kind}: {what}")
    targets = format_targets(result)
    if targets:
        lines.append("")
        lines.extend(targets)
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib (pip install matplotlib)") from None
    workloads = list(result["workloads"].items())
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.5))
    if len(workloads) == 1:
        axes = [axes]
    labels = {
        "cpu_us_per_request": "server CPU us per request (lower is better)",
        "mb_per_s": "MB/s (higher is better)",
        "kib_per_connection": "KiB per idle connection (lower is better)",
    }
    for ax, (name, wl) in zip(axes, workloads):
        key, _ = KEY_FIGURE[wl["kind"]]
        names = list(wl["servers"])
        med = [wl["servers"][k]["median"][key] for k in names]
        err = [
            [m - wl["servers"][k]["min"][key] for k, m in zip(names, med)],
            [wl["servers"][k]["max"][key] - m for k, m in zip(names, med)],
        ]
        colors = [
            "tab:blue" if k.startswith("pystream") else "tab:gray" if k in LIMITS else "tab:orange"
            for k in names
        ]
        bars = ax.barh(
            [f"{k} (limit)" if k in LIMITS else k for k in names], med, xerr=err, color=colors
        )
        for bar, k in zip(bars, names):
            if k in LIMITS:
                bar.set_hatch("//")
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(labels[key], fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"pystream bench, {result['python']}, medians of {result['settings']['rounds']} rounds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
