#!/usr/bin/env python3
"""Overload and soak runs of vigild (docs/benchmarks.md, "Overload and soak").

  overload: offers 2x the sustainable rate for --duration seconds over TCP, then over
    UDP, and checks that TCP lost nothing (the sender was slowed instead), that every UDP
    datagram sent is either received or counted as dropped, that the pipeline drains
    within 30 s after the overload and takes a half-rate probe without loss, and that a
    tenant flooding at 10x its quota does not cost the other tenants events.
  soak: streams a run generated on the fly (vigil_loadgen stream) at half the
    sustainable rate over TCP for --duration seconds, samples RSS every 10 s, and checks
    RSS growth <= 5 % after the first minute, that nothing was lost or dropped, and that
    the alerts per rule equal the ground truth of exactly the events sent.

The sustainable rate is --rate, or the TCP maximum measured first on the --events file,
which also provides the rules and indicator lists.
Exit status 1 when a check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402


def log(msg):
    print(msg, flush=True)


def send(args, path, proto, port, rate, duration=0.0):
    cmd = [args.loadgen, "send", "--file", path, "--proto", proto, "--target",
           f"127.0.0.1:{port}", "--rate", str(rate)]
    if duration:
        cmd += ["--duration", str(duration)]
    if args.sender_cpus:
        cmd = ["taskset", "-c", args.sender_cpus] + cmd
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def drained(v, since, timeout=30.0):
    """Seconds from `since` until every received event is through the pipeline and the
    source has received nothing new for 1 s (a UDP socket buffer may still hold a
    backlog), or None after `timeout`. Also returns the metrics read then."""
    last, still = -1.0, time.time()
    while time.time() - since < timeout:
        m = v.metrics()
        received = e2e.msum(m, "vigil_source_received_total")
        if received != last:
            last, still = received, time.time()
        if e2e.msum(m, "vigil_pipeline_events_total") == \
                e2e.msum(m, "vigil_pipeline_events_done_total") + \
                e2e.msum(m, "vigil_pipeline_oversize_dropped_total") and \
                all(s["queued"] == 0 for s in v.status()["sources"]) and \
                time.time() - still >= 1.0:
            return still - since, m
        time.sleep(0.05)
    return None, v.metrics()


def flush_overflow_count(args, v, proto):
    """The kernel reports UDP receive-buffer drops (SO_RXQ_OVFL) only with the next
    datagram read, so one marker datagram makes drops at the very end show up."""
    if proto != "udp":
        return 0
    marker = f"{args.out}/marker.log"
    with open(marker, "w") as f:
        f.write("<13>Jan  1 00:00:00 marker vigil-stress: end of a phase\n")
    send(args, marker, proto, v.port, 0)
    drained(v, time.time())
    return 1


def probe(args, data, v, proto, rate):
    """Sends half the sustainable rate for 10 s; returns what was lost and whether the
    source counters account for it, plus the counter totals after it."""
    m0 = v.metrics()
    p = send(args, f"{data}/events.log", proto, v.port, rate / 2, 10)
    drained(v, time.time())
    p["sent"] += flush_overflow_count(args, v, proto)
    _, m = drained(v, time.time())
    got = e2e.msum(m, "vigil_source_received_total") - e2e.msum(m0, "vigil_source_received_total")
    drops = e2e.msum(m, "vigil_source_dropped_total") - e2e.msum(m0, "vigil_source_dropped_total")
    lost = int(p["sent"] - got)
    return {"sent": p["sent"], "lost": lost, "counted": lost == drops + p["send_errors"],
            "received": e2e.msum(m, "vigil_source_received_total"),
            "kernel": e2e.msum(m, "vigil_source_dropped_total", 'reason="kernel"'),
            "accounted": e2e.msum(m, "vigil_source_received_total") +
            e2e.msum(m, "vigil_source_dropped_total")}


def sustainable_rate(args, data, truth):
    if args.rate:
        return args.rate
    r = e2e.run_one(args, "stress", data, truth, args.workers, "tcp", 0.0, "-max")
    log(f"sustainable rate (TCP, unpaced, {args.workers} workers): {r['events_per_s']:,} ev/s, "
        f"load {r['load_before']:.1f}")
    return r["events_per_s"]


def overload(args, data, truth):
    ok = True
    rate = sustainable_rate(args, data, truth)
    for proto in args.protos.split(","):
        v = e2e.Vigild(args, data, args.workers, proto, os.path.join(args.out, "runs",
                                                                        f"overload-{proto}"),
                       truth["tenants"])
        try:
            # Baseline: a 10 s probe at half the rate before the overload, to compare the
            # probe after it with (UDP may lose some datagrams even at half the rate on a
            # loaded machine).
            base_lost = probe(args, data, v, proto, rate)
            s = send(args, f"{data}/events.log", proto, v.port, 2 * rate, args.duration)
            end = time.time()
            secs, m = drained(v, end)
            if proto == "udp":
                s["sent"] += flush_overflow_count(args, v, proto)
                _, m = drained(v, time.time())
            received = e2e.msum(m, "vigil_source_received_total")
            dropped = e2e.msum(m, "vigil_source_dropped_total")
            kernel = e2e.msum(m, "vigil_source_dropped_total", 'reason="kernel"')
            queue_full = e2e.msum(m, "vigil_source_dropped_total", 'reason="queue_full"')
            accounted = received + dropped + s["send_errors"] - base_lost["accounted"]
            log(f"overload {proto}: offered {2 * rate:,.0f}/s for {args.duration:.0f} s; sender "
                f"achieved {s['rate']:,.0f}/s (blocked {s['blocked_s']} s), sent {s['sent']:,}; "
                f"received {received - base_lost['received']:,.0f}, dropped kernel "
                f"{kernel - base_lost['kernel']:,.0f}, queue_full {queue_full:,.0f}, send errors "
                f"{s['send_errors']}; drained "
                f"{'%.1f s' % secs if secs is not None else 'NOT within 30 s'} after the end; "
                f"load {e2e.load_average():.1f}")
            if proto == "tcp" and (received - base_lost["received"] != s["sent"] or dropped != 0):
                log("  FAILED: TCP lost events")
                ok = False
            if accounted != s["sent"]:
                log(f"  FAILED: {s['sent'] - accounted:,.0f} events sent are in no counter")
                ok = False
            if secs is None:
                log("  FAILED: no recovery within 30 s")
                ok = False
            after = probe(args, data, v, proto, rate)
            log(f"  probe at {rate / 2:,.0f}/s for 10 s: before the overload {base_lost['lost']:,} "
                f"of {base_lost['sent']:,} lost, after it {after['lost']:,} of {after['sent']:,} "
                f"lost, every loss counted: {base_lost['counted'] and after['counted']}")
            if not (base_lost["counted"] and after["counted"]):
                log("  FAILED: a probe lost events that no counter shows")
                ok = False
            if after["lost"] > base_lost["lost"] + 0.01 * after["sent"]:
                log("  FAILED: the probe after the overload lost more than the one before")
                ok = False
            m2 = v.metrics()
            if e2e.msum(m2, "vigil_pipeline_events_total") != \
                    e2e.msum(m2, "vigil_source_received_total"):
                log("  FAILED: received events not all taken by the pipeline")
                ok = False
        finally:
            v.stop()
    if args.tenant_flood:
        ok = tenant_flood(args, data, truth, rate) and ok
    return ok


def tenant_flood(args, data, truth, rate):
    """One tenant (t00) floods at 10x its quota while the others send below capacity."""
    flood, others = f"{args.out}/flood-t00.log", f"{args.out}/others.log"
    with open(f"{data}/events.log") as f, open(flood, "w") as a, open(others, "w") as b:
        for line in f:
            (a if ".t00.bench " in line or '"org":"t00"' in line else b).write(line)
    quota = max(100.0, rate * 0.05)
    run_dir = os.path.join(args.out, "runs", "overload-tenant")
    v = e2e.Vigild(args, data, args.workers, "tcp", run_dir, truth["tenants"])
    v.stop()
    with open(v.config, "a") as f:
        f.write(f"tenant_quotas:\n  - {{tenant: t00, max_events_per_second: {quota}}}\n")
    # Start again on the config with the quota.
    v2 = object.__new__(e2e.Vigild)
    v2.port, v2.api_port, v2.run_dir, v2.config = v.port, v.api_port, run_dir, v.config
    # The state folder, and with it the token store, is the first run's.
    v2.token = v.token
    cmd = [args.vigild, "--config", v.config]
    if args.cpus:
        cmd = ["taskset", "-c", args.cpus] + cmd
    v2.err = open(f"{run_dir}/vigild.log", "a")
    v2.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=v2.err)
    v2.api = f"http://127.0.0.1:{v2.api_port}"
    e2e.wait_api(v2, args.start_timeout)
    try:
        results = {}
        t1 = threading.Thread(target=lambda: results.__setitem__(
            "flood", send(args, flood, "tcp", v2.port, 10 * quota, args.duration)))
        t1.start()
        results["others"] = send(args, others, "tcp", v2.port, 0.4 * rate, args.duration)
        t1.join()
        secs, m = drained(v2, time.time())
        quota_dropped = e2e.msum(m, "vigil_events_dropped_total", 'reason="tenant_quota"')
        delivered_others = sum(v for k, v in m.get("vigil_events_delivered_total", {}).items()
                               if 'tenant="t00"' not in k)
        received = e2e.msum(m, "vigil_source_received_total")
        sent = results["flood"]["sent"] + results["others"]["sent"]
        log(f"tenant flood: t00 sent {results['flood']['sent']:,} at {10 * quota:,.0f}/s "
            f"(quota {quota:,.0f}/s), {quota_dropped:,.0f} dropped as tenant_quota; other "
            f"tenants sent {results['others']['sent']:,}, delivered {delivered_others:,.0f}; "
            f"load {e2e.load_average():.1f}")
        ok = delivered_others == results["others"]["sent"] and received == sent
        if not ok:
            log("  FAILED: the other tenants lost events, or events are in no counter")
        return ok
    finally:
        v2.stop()


def soak_sample(v, t0):
    """Read one soak sample: seconds since the start, RSS in KiB, correlation keys and
    correlation state bytes."""
    with open(f"/proc/{v.proc.pid}/status") as f:
        rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
    m = v.metrics()
    return (round(time.time() - t0), rss, e2e.msum(m, "vigil_correlation_keys"),
            e2e.msum(m, "vigil_correlation_state_bytes"))


# Counters that must stay at zero in a soak: each one means an event, a match or an
# alert was lost somewhere between the socket and the alert file.
SOAK_LOSS_COUNTERS = [
    "vigil_source_dropped_total", "vigil_events_dropped_total",
    "vigil_pipeline_oversize_dropped_total", "vigil_parse_errors_total",
    "vigil_detection_matches_dropped_total", "vigil_correlation_updates_dropped_total",
    "vigil_correlation_late_events_total", "vigil_alerts_output_dropped_total",
    "vigil_alert_write_errors_total",
]
# Reported but not failed on: a correlation group leaves the table only when
# max_keys_per_rule (or the tenant cap) pushes out the least recently updated one. A run
# with a steady supply of new source addresses fills the table and then evicts groups
# whose windows expired long before, which loses nothing. Evicting a group with a live
# window can cost an alert, and the comparison with the ground truth catches that.
SOAK_EVICTION_COUNTERS = ["vigil_correlation_evictions_total",
                          "vigil_correlation_tenant_evictions_total"]


def soak(args, data, truth):
    """Streams a generated run for --duration seconds (vigil_loadgen stream: event time
    advances over the whole run and the generator writes the ground truth of exactly the
    lines it sent), then checks RSS, the counters and the alerts against that truth."""
    rate = sustainable_rate(args, data, truth)
    offered = 0.5 * rate
    v = e2e.Vigild(args, data, args.workers, "tcp", os.path.join(args.out, "runs", "soak"),
                   truth["tenants"])
    truth_path = f"{args.out}/soak-truth.json"
    cmd = [args.loadgen, "stream", "--workload", args.workload, "--seed", str(args.seed),
           "--segment-events", str(args.segment_events), "--proto", "tcp", "--target",
           f"127.0.0.1:{v.port}", "--rate", str(offered), "--duration", str(args.duration),
           "--truth", truth_path]
    if args.sender_cpus:
        cmd = ["taskset", "-c", args.sender_cpus] + cmd
    samples = []
    try:
        sender = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        while sender.poll() is None:
            samples.append(soak_sample(v, t0))
            try:
                sender.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        out = sender.stdout.read()
        if sender.returncode != 0:
            raise RuntimeError(f"vigil_loadgen stream exited with {sender.returncode}: {out}")
        s = json.loads(out)
        secs, m = drained(v, time.time(), 120)
        samples.append(soak_sample(v, t0))
    finally:
        v.stop()
    with open(truth_path) as f:
        run_truth = json.load(f)
    received = e2e.msum(m, "vigil_source_received_total")
    after_minute = [x[1] for x in samples if x[0] >= 60] or [samples[-1][1]]
    growth = (after_minute[-1] - after_minute[0]) / after_minute[0]
    log(f"soak: {offered:,.0f}/s over TCP for {s['seconds']:.0f} s (achieved {s['rate']:,.0f}/s, "
        f"blocked {s['blocked_s']} s), sent {s['sent']:,} in {s['segments_started']} segments, "
        f"received {received:,.0f}; RSS {after_minute[0] / 1024:.0f} -> "
        f"{after_minute[-1] / 1024:.0f} MiB after the first minute ({growth * 100:+.1f} %, max "
        f"{max(x[1] for x in samples) / 1024:.0f} MiB); correlation keys at the end "
        f"{samples[-1][2]:,.0f}, state {samples[-1][3] / 2**20:.1f} MiB; drained "
        f"{'%.1f s' % secs if secs is not None else 'NOT within 120 s'} after the end; "
        f"load {e2e.load_average():.1f}")
    with open(f"{args.out}/soak-samples.json", "w") as f:
        json.dump({"columns": ["seconds", "rss_kib", "correlation_keys", "state_bytes"],
                   "samples": samples}, f)
    ok = True
    if received != s["sent"] or run_truth["events"] != s["sent"]:
        log(f"  FAILED: sent {s['sent']:,}, received {received:,.0f}, ground truth covers "
            f"{run_truth['events']:,}")
        ok = False
    if growth > 0.05:
        log("  FAILED: RSS grew more than 5 % after the first minute")
        ok = False
    done = e2e.msum(m, "vigil_pipeline_events_done_total")
    if secs is None or e2e.msum(m, "vigil_pipeline_events_total") != received or done != received:
        log(f"  FAILED: the pipeline took {e2e.msum(m, 'vigil_pipeline_events_total'):,.0f} and "
            f"finished {done:,.0f} of {received:,.0f} received events")
        ok = False
    losses = {name: e2e.msum(m, name) for name in SOAK_LOSS_COUNTERS if e2e.msum(m, name)}
    log("  loss counters: " + (", ".join(f"{k} {v:,.0f}" for k, v in losses.items())
                               if losses else "all zero"))
    ok = ok and not losses
    log("  correlation groups evicted at the key caps: " +
        ", ".join(f"{name} {e2e.msum(m, name):,.0f}" for name in SOAK_EVICTION_COUNTERS))
    counts = e2e.alerts_by_rule(f"{args.out}/runs/soak/alerts.jsonl")
    problems = e2e.check_truth(run_truth, counts)
    log(f"  alerts: {sum(counts.values()):,} raised (metrics: "
        f"{e2e.msum(m, 'vigil_alerts_total'):,.0f}), ground truth "
        f"{run_truth['alerts_total']:,}: " +
        ("equal per rule" if not problems else "; ".join(problems)))
    ok = ok and not problems
    if not ok:
        log("  FAILED")
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["overload", "soak"])
    p.add_argument("--build", default="build/release")
    p.add_argument("--out", default="/tmp/vigil-stress")
    p.add_argument("--workload", default="W2")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=0, help="sustainable rate; measured when 0")
    p.add_argument("--duration", type=float, default=0,
                   help="seconds (default 60 for overload, 600 for soak)")
    p.add_argument("--protos", default="tcp,udp", help="overload: tcp, udp or both")
    p.add_argument("--no-tenant-flood", dest="tenant_flood", action="store_false",
                   help="overload: leave out the tenant flood")
    p.add_argument("--segment-events", type=int, default=250_000,
                   help="soak: events per generated segment (vigil_loadgen stream)")
    p.add_argument("--cpus", default="")
    p.add_argument("--sender-cpus", default="")
    args = p.parse_args()
    args.duration = args.duration or (60 if args.mode == "overload" else 600)
    args.vigild = f"{args.build}/mgmt/vigild"
    args.vigilctl = f"{args.build}/mgmt/vigilctl"
    args.loadgen = f"{args.build}/bench/vigil_loadgen"
    args.start_timeout, args.drain_timeout = 300, 300
    args.idle_source_bytes = 0  # e2e.Vigild: no second, idle file source
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "data", f"{args.workload}-{args.events}-{args.seed}")
    if not os.path.exists(f"{data}/truth.json"):
        subprocess.run([args.loadgen, "gen", "--workload", args.workload, "--seed",
                        str(args.seed), "--events", str(args.events), "--out", data], check=True)
    with open(f"{data}/truth.json") as f:
        truth = json.load(f)
    log(f"{args.mode}: {args.workload}, {truth['events']:,} events, {args.workers} workers, "
        f"load {e2e.load_average():.1f}")
    ok = overload(args, data, truth) if args.mode == "overload" else soak(args, data, truth)
    log("result: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
