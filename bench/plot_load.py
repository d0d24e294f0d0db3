#!/usr/bin/python3
"""Plots throughput and alert latency of vigild against offered load from the JSON lines
that bench/e2e.py --json writes (the TCP runs at fractions of the maximum rate).

  bench/plot_load.py RESULTS.jsonl docs/images/e2e-load.png

Uses Debian's python3-matplotlib (installed here when missing: apt-get needs root).
"""
import json
import os
import subprocess
import sys


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("installing python3-matplotlib", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "python3-matplotlib"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_load.py RESULTS.jsonl OUT.png")
    ensure_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            if r.get("kind") != "vigild" or r.get("source") != "tcp":
                continue
            key = f"{r['workload']}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}"
            offered = r["offered_rate"] or r["events_per_s"]  # unpaced run: offered = max
            lat = r.get("latency_us") or {}
            series.setdefault(key, []).append(
                (offered, r["events_per_s"], lat.get("p50"), lat.get("p99"), lat.get("p999")))
    if not series:
        sys.exit(f"plot_load: no TCP runs in {sys.argv[1]}")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10")
    for n, (key, points) in enumerate(sorted(series.items())):
        color = colors(n % 10)
        points.sort()
        x = [p[0] / 1e3 for p in points]
        ax1.plot(x, [p[1] / 1e3 for p in points], marker="o", color=color, label=key)
        lat = [(p[0] / 1e3, p[3]) for p in points if p[3] is not None]
        if lat:
            ax2.plot([a for a, _ in lat], [b / 1e3 for _, b in lat], marker="o", color=color,
                     label=key + " p99")
        lat50 = [(p[0] / 1e3, p[2]) for p in points if p[2] is not None]
        if lat50:
            ax2.plot([a for a, _ in lat50], [b / 1e3 for _, b in lat50], marker=".",
                     color=color, linestyle="--", label=key + " p50")
    ax1.set_xlabel("offered load (k events/s, TCP; the last point is the unpaced run)")
    ax1.set_ylabel("throughput (k events/s)")
    ax1.set_title("vigild throughput against offered load")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("offered load (k events/s, TCP)")
    ax2.set_ylabel("event receipt to alert (ms)")
    ax2.set_yscale("log")
    ax2.set_title("alert latency against offered load")
    ax2.grid(True, alpha=0.3, which="both")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[2])), exist_ok=True)
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
