"""The benchmark's figures: the statistics of a server's samples, its ratios
to the C reference and to asyncio streams, the table and the chart."""

from __future__ import annotations

import statistics
from typing import Any

from ._catalog import BASELINE, MIB, REFERENCE

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
    """Per workload and server: its key figure divided by the C reference's
    and by asyncio streams' (where those ran)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, wl in result["workloads"].items():
        key, _ = KEY_FIGURE[wl["kind"]]
        servers = wl["servers"]
        out[name] = {}
        for kind, summary in servers.items():
            mine = summary["median"][key]
            out[name][kind] = {}
            for label, other in (("vs_c", REFERENCE), ("vs_asyncio", BASELINE)):
                if other in servers and servers[other]["median"][key]:
                    out[name][kind][label] = mine / servers[other]["median"][key]
    return out


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
            title = f"{name}  (echo, {wl['connections']} connection(s) x {wl['size']} B, {s['seconds']} s each)"
            header = f"{'server':<17} {'requests/s':>26} {'MB/s':>8} {'CPU us/req':>20} {'p99 us':>8} {'CPU xC':>7} {'CPU xasyncio':>12}"
        elif kind == "bulk":
            title = f"{name}  ({s['bulk_bytes'] / MIB:.0f} MiB, server send_all of 64 KiB into a C reader)"
            header = f"{'server':<17} {'MB/s':>26} {'CPU us/MB':>20} {'MB/s xC':>8} {'MB/s xasyncio':>13}"
        else:
            title = f"{name}  ({wl['connections']} connections, server RSS growth)"
            header = f"{'server':<17} {'KiB per connection':>26} {'RSS MiB':>10} {'xC':>7} {'xasyncio':>9}"
        lines += ["", title, header, "-" * len(header)]
        for server, summary in wl["servers"].items():
            med, lo, hi = summary["median"], summary["min"], summary["max"]
            r = rel[name][server]
            xc = f"{r['vs_c']:.2f}" if "vs_c" in r else "-"
            xa = f"{r['vs_asyncio']:.2f}" if "vs_asyncio" in r else "-"

            def span(key: str, fmt: str, med=med, lo=lo, hi=hi) -> str:  # type: ignore[no-untyped-def]
                return f"{med[key]:{fmt}} [{lo[key]:{fmt}}-{hi[key]:{fmt}}]"

            if kind == "echo":
                lines.append(
                    f"{server:<17} {span('requests_per_s', ',.0f'):>26} {med['mb_per_s']:>8.1f} "
                    f"{span('cpu_us_per_request', '.1f'):>20} {med['p99_us']:>8.0f} {xc:>7} {xa:>12}"
                )
            elif kind == "bulk":
                lines.append(
                    f"{server:<17} {span('mb_per_s', ',.0f'):>26} {span('cpu_us_per_mb', '.0f'):>20} "
                    f"{xc:>8} {xa:>13}"
                )
            else:
                lines.append(
                    f"{server:<17} {span('kib_per_connection', '.2f'):>26} {med['rss_mib']:>10.1f} "
                    f"{xc:>7} {xa:>9}"
                )
    for kind, why in result["skipped"].items():
        lines.append(f"skipped {kind}: {why}")
    lines.append("")
    lines.append(
        "CPU = the server process's user+system time in the measured window; "
        "xC and xasyncio divide a server's figure by the C reference's and asyncio streams'."
    )
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
            "tab:blue"
            if k.startswith("pystream")
            else "tab:gray"
            if k == REFERENCE
            else "tab:orange"
            for k in names
        ]
        ax.barh(names, med, xerr=err, color=colors)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(labels[key], fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"pystream bench, {result['python']}, medians of {result['settings']['rounds']} rounds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
