#!/usr/bin/env python3
"""Prints the runs of one or more `bench/e2e.py --json` files as Markdown tables, the
form docs/benchmarks.md uses.

  bench/e2e_report.py /tmp/vigil-e2e/w1.jsonl /tmp/vigil-e2e/w2.jsonl
"""
import json
import sys


def rate(x):
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def ms(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f}" if us < 10_000 else f"{us / 1000:.0f}"


def main():
    runs, anchors = [], {}
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("kind") == "anchors":
                    anchors[r["workload"]] = r
                elif r.get("kind") == "vigild":
                    runs.append(r)
    print("| workload | workers | source | offered | events/s (wall) | events per CPU-s | "
          "alerts | alerts/s | latency p50 / p99 / p99.9 (ms) | to first playbook action p50 / p99 / "
          "p99.9 (ms) | RSS (MiB) | load | truth |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- | --- |")
    for r in runs:
        lat = r.get("latency_us") or {}
        act = r.get("action_latency_us") or {}
        offered = rate(r["offered_rate"]) if r.get("offered_rate") else "max"
        print(f"| {r['workload']} | {r['workers']} | {r['source']} | {offered} | "
              f"{rate(r['events_per_s'])} | {rate(r['events_per_cpu_s'])} | {r['alerts']:,} | "
              f"{r['alerts_per_s']:,.0f} | {ms(lat.get('p50'))} / {ms(lat.get('p99'))} / "
              f"{ms(lat.get('p999'))} | {ms(act.get('p50'))} / {ms(act.get('p99'))} / "
              f"{ms(act.get('p999'))} | {r['rss_mib']:.0f} | "
              f"{r['load_before']:.1f} to {r['load_after']:.1f} | {r['truth_check']} |")
    if anchors:
        print()
        print("| workload | read-only pass (lines/s, one core) | Hyperscan only (lines/s) | "
              "Hyperscan hit lines |")
        print("| --- | ---: | ---: | ---: |")
        for wl, a in sorted(anchors.items()):
            hs = a.get("hs")
            print(f"| {wl} | {rate(a['read']['lines_per_s'])} | "
                  f"{rate(hs['lines_per_s']) if hs else 'not run'} | "
                  f"{hs['hits'] if hs else '-'} |")


if __name__ == "__main__":
    main()
