#!/usr/bin/env python3
"""End-to-end benchmark driver for vigild (bench/e2e.sh runs it; see docs/benchmarks.md).

For each workload it generates traffic with vigil_loadgen, runs the limit anchors
(vigil_linescan read / hs) on the same lines, then runs vigild on 1 and 2 workers through
the chosen sources. Each run reports events/s (wall and per CPU second), alerts/s, the
receive-to-alert latency percentiles from vigild's vigil_alert_latency_bucket_total
counters, and peak RSS, and checks the alerts of every rule against the generator's
ground truth. Exit status 1 when any run raised other alert counts than the ground truth
or lost events it must not lose.
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


_handed_out = set()


def free_port():
    """A loopback TCP port that was free a moment ago.

    The port lies below the kernel's ephemeral range, because a port from bind(0) can be
    taken as the source port of an outgoing connection before vigild binds it.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    low = max(10000, high - 12000)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(2000 if high - low >= 1000 else 0):
        port = rng.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """User + system CPU seconds of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def get(url, timeout=2.0, token=""):
    """GET `url`, sending `token` as a bearer token when given (vigild's API and /metrics
    need an admin token)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return r.read().decode()


def mint_token(vigilctl, state_dir):
    """Creates an admin token in `state_dir`/auth.db with 'vigilctl tokens bootstrap', as an
    operator does before the first start, and returns it."""
    out = subprocess.run([vigilctl, "tokens", "bootstrap", "--state-dir", state_dir,
                          "--name", "bench-e2e", "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["token"]


def wait_api(v, timeout):
    """Polls vigild's /api/v1/status with its token until it answers. Returns True when it
    did, False when the process exited or `timeout` passed. A refused token ends the wait
    at once: it would never succeed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if v.proc.poll() is not None:
            return False
        try:
            get(v.api + "/api/v1/status", 0.5, v.token)
            return True
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise RuntimeError(f"vigild refused the benchmark's token on "
                                   f"{v.api}/api/v1/status (HTTP {e.code}); see "
                                   f"{v.run_dir}/vigild.log") from e
        except OSError:
            pass
        time.sleep(0.02)
    return False


def parse_metrics(text):
    """Prometheus text -> {name: {labels_text: value}}."""
    out = collections.defaultdict(dict)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if m:
            out[m.group(1)][m.group(2) or ""] = float(m.group(3))
    return out


def msum(metrics, name, contains=""):
    return sum(v for k, v in metrics.get(name, {}).items() if contains in k)


def latency_percentiles(before, after):
    """Percentiles (us) from the difference of two readings of the latency buckets."""
    buckets = []
    for labels, value in after.get("vigil_alert_latency_bucket_total", {}).items():
        bound = re.search(r'upper_us="([^"]+)"', labels).group(1)
        prev = before.get("vigil_alert_latency_bucket_total", {}).get(labels, 0.0)
        upper = float("inf") if bound == "+Inf" else float(bound)
        buckets.append((upper, value - prev))
    buckets.sort()
    total = sum(c for _, c in buckets)
    if total == 0:
        return None
    out = {}
    for name, q in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999)):
        need, seen = q * total, 0.0
        for upper, count in buckets:
            seen += count
            if seen >= need:
                out[name] = upper
                break
    out["alerts"] = int(total)
    return out


def histogram_percentiles(before, after, name):
    """Percentiles (us) of a Prometheus histogram from the difference of two readings."""
    series = after.get(f"{name}_bucket", {})
    cumulative = []
    for labels, value in series.items():
        bound = re.search(r'le="([^"]+)"', labels).group(1)
        prev = before.get(f"{name}_bucket", {}).get(labels, 0.0)
        upper = float("inf") if bound == "+Inf" else float(bound)
        cumulative.append((upper, value - prev))
    cumulative.sort()
    if not cumulative or cumulative[-1][1] == 0:
        return None
    total = cumulative[-1][1]
    out = {}
    for label, q in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999)):
        out[label] = next(upper for upper, seen in cumulative if seen >= q * total)
    out["runs"] = int(total)
    return out


def runs_started_at_stop(path):
    """Runs the playbook runner started, from its "playbook runner stopped" log line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            found = re.findall(r"playbook runner stopped runs_started=(\d+)", f.read())
    except OSError:
        return None
    return int(found[-1]) if found else None


def log_interval(path):
    """Seconds from vigild's "pipeline started" to its "replay done" log line, or None."""
    import datetime
    stamps = {}
    with open(path) as f:
        for line in f:
            for key in ("pipeline started", "replay done"):
                if key in line and key not in stamps:
                    stamps[key] = datetime.datetime.strptime(
                        line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    if len(stamps) == 2:
        return stamps["replay done"] - stamps["pipeline started"]
    return None


def alerts_by_rule(path):
    counts = collections.Counter()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    counts[json.loads(line)["rule_id"]] += 1
    return counts


def check_truth(truth, counts):
    """Differences between the alerts raised and the ground truth, as text lines."""
    problems = []
    expected = truth["alerts_by_rule"]
    for rule, n in expected.items():
        if counts.get(rule, 0) != n:
            problems.append(f"rule {rule}: {counts.get(rule, 0)} alerts, ground truth {n}")
    for rule, n in counts.items():
        if rule not in expected:
            problems.append(f"rule {rule}: {n} alerts, not in the ground truth")
    return problems


def write_config(path, run_dir, data, workers, source, port, api_port, tenants,
                 idle_source_bytes=0):
    lines = [
        "# written by bench/e2e.py for one benchmark run",
        "daemon: {log_level: info, drain_timeout_s: 60}",
        f"state_dir: {run_dir}/state",
        "pipeline:",
        f"  workers: {workers}",
        "  shards: 4",
        "  max_keys_per_rule: 1000000",
        "  checkpoint_interval_s: 0",
        "sources:",
    ]
    if source == "file":
        lines += ["  - {name: replay, type: file, paths: [" + f"{data}/events.log" + "]}"]
    elif source == "udp":
        lines += ["  - {name: udp0, type: udp, listen: " + f"127.0.0.1:{port}" +
                  ", receive_buffer_bytes: 33554432, ring_capacity: 65536}"]
    elif source == "tcp":
        lines += ["  - {name: tcp0, type: tcp, listen: " + f"127.0.0.1:{port}" +
                  ", framing: lf, ring_capacity: 65536}"]
    elif source == "pcap":
        prefix = f"vigil_e2e_{os.getpid()}_{port}"
        lines += [
            "  - name: pcap0",
            "    type: dpdk",
            "    udp_ports: [514]",
            "    ring_capacity: 65536",
            "    eal_args: [-l, '0', --no-huge, --no-pci, -m, '512', --no-shconf, --no-telemetry,",
            f"               --file-prefix={prefix}, '--log-level=lib.eal:warning',",
            f"               '--vdev=net_pcap0,rx_pcap={data}/events.pcap']",
        ]
    if idle_source_bytes:
        # A second file source on an empty file. Its max_message_bytes raises the
        # pipeline's (the largest of all sources), and when that differs from the main
        # source's 64 KiB, the input stage copies each message instead of trading buffers.
        empty = f"{run_dir}/empty.log"
        open(empty, "w").close()
        lines += ["  - {name: idle, type: file, paths: [" + empty + "], max_message_bytes: " +
                  f"{idle_source_bytes}}}"]
    lines.append("tenants:")
    for t in range(tenants):
        lines.append(f"  - {{field: host.name, suffix: .t{t:02d}.bench, tenant: t{t:02d}}}")
    for t in range(tenants):
        lines.append(f"  - {{field: org, equals: t{t:02d}, tenant: t{t:02d}}}")
    if os.path.exists(f"{data}/intel/ioc_ips.txt"):
        lines += ["intel:", "  lists:",
                  f"    - {{name: bench-ips, path: {data}/intel/ioc_ips.txt}}",
                  f"    - {{name: bench-domains, path: {data}/intel/ioc_domains.txt}}"]
    if any(f.endswith(".yml") for f in os.listdir(f"{data}/rules")):
        lines += ["rules:", f"  paths: [{data}/rules]"]
    lines += ["alerts:", f"  output: {run_dir}/alerts.jsonl",
              "api:", f"  listen: 127.0.0.1:{api_port}", f"  case_db: {run_dir}/state/cases.db"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Vigild:
    """One vigild process on a generated config, with its API on a free port."""

    def __init__(self, args, data, workers, source, run_dir, tenants):
        self.port = free_port()
        self.api_port = free_port()
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir + "/state")
        self.run_dir = run_dir
        self.config = f"{run_dir}/vigil.yaml"
        write_config(self.config, run_dir, data, workers, source, self.port, self.api_port,
                     tenants, args.idle_source_bytes)
        self.token = mint_token(args.vigilctl, run_dir + "/state")
        cmd = [args.vigild, "--config", self.config]
        if args.cpus:
            cmd = ["taskset", "-c", args.cpus] + cmd
        self.err = open(f"{run_dir}/vigild.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err)
        self.api = f"http://127.0.0.1:{self.api_port}"
        try:
            up = wait_api(self, args.start_timeout)
        except RuntimeError:
            self.stop()
            raise
        if not up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vigild exited with {self.proc.returncode} at start; "
                                   f"see {run_dir}/vigild.log")
            self.stop()
            raise RuntimeError(f"vigild API not up after {args.start_timeout} s; "
                               f"see {run_dir}/vigild.log")
        self.t0 = time.time()
        self.cpu0 = proc_cpu(self.proc.pid)
        self.metrics0 = self.metrics()

    def metrics(self):
        return parse_metrics(get(self.api + "/metrics", 10, self.token))

    def status(self):
        return json.loads(get(self.api + "/api/v1/status", 10, self.token))

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def wait_runs(v, timeout):
    """Waits until every delivered alert has started its playbook run and every run started
    has finished (the default-case playbook files each alert in a case after the pipeline
    is done with it, through the case store's inbox), at most `timeout` seconds. Returns
    the metrics read last."""
    deadline = time.time() + timeout
    previous = None
    while True:
        m = v.metrics()
        delivered = msum(m, "vigil_alerts_delivered_total")
        started = msum(m, "vigil_playbook_runs_started_total")
        finished = msum(m, "vigil_playbook_runs_finished_total")
        # One scrape is not a snapshot: it may read the latency histograms before runs that
        # end during the scrape and the run counters after them. So the counts must also
        # hold still across two scrapes, and the second one's histograms are complete.
        settled = started >= delivered and finished >= started
        if (settled and previous == (delivered, started, finished)) or time.time() > deadline:
            return m
        previous = (delivered, started, finished) if settled else None
        time.sleep(0.05)


def wait_drained(v, expected_received, timeout):
    """Waits until every received event is done and, if given, `expected_received` were
    received (or reception stopped for 3 s). Returns the final metrics."""
    deadline = time.time() + timeout
    last, still = -1, time.time()
    while time.time() < deadline:
        m = v.metrics()
        received = msum(m, "vigil_source_received_total")
        done = msum(m, "vigil_pipeline_events_done_total") + \
            msum(m, "vigil_pipeline_oversize_dropped_total")
        started = msum(m, "vigil_pipeline_events_total")
        if received != last:
            last, still = received, time.time()
        if done == started and started == received:
            if expected_received is not None and received >= expected_received:
                return m, time.time()
            if time.time() - still > 3:
                return m, still
        time.sleep(0.02)
    return v.metrics(), time.time()


def run_one(args, wl, data, truth, workers, source, rate=0.0, label=""):
    run_dir = os.path.join(args.out, "runs", f"{wl}-{source}-w{workers}{label}")
    result = {"workload": wl, "source": source, "workers": workers, "load_before": load_average(),
              "offered_rate": rate or None}
    v = Vigild(args, data, workers, source, run_dir, truth["tenants"])
    sender = None
    try:
        events = truth["events"]
        if source == "file":
            while not v.status()["replay_done"]:
                if v.proc.poll() is not None:
                    raise RuntimeError(f"vigild exited; see {run_dir}/vigild.log")
                time.sleep(0.02)
            m = v.metrics()
        elif source in ("udp", "tcp"):
            cmd = [args.loadgen, "send", "--file", f"{data}/events.log", "--proto", source,
                   "--target", f"127.0.0.1:{v.port}", "--rate", str(rate)]
            if args.sender_cpus:
                cmd = ["taskset", "-c", args.sender_cpus] + cmd
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            sender = json.loads(out)
            m, t1 = wait_drained(v, events, args.drain_timeout)
        else:  # pcap
            m, t1 = wait_drained(v, events, args.drain_timeout)
        if source == "file":
            t1 = time.time()
        cpu1 = v.cpu()
        result["rss_mib"] = round(proc_hwm_kib(v.proc.pid) / 1024, 1)
        # The inbox files a burst of alerts at a few hundred to a thousand per second.
        runs_m = wait_runs(v, 120)
    finally:
        v.stop()
    received = msum(m, "vigil_source_received_total")
    wall = t1 - v.t0
    if source == "file":
        # The replay may start before the API answers; vigild's log has the exact span.
        wall = log_interval(f"{run_dir}/vigild.log") or wall
    cpu = cpu1 - v.cpu0
    counts = alerts_by_rule(f"{run_dir}/alerts.jsonl")
    alerts = sum(counts.values())
    result.update({
        "events": int(received),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s": round(received / wall) if wall > 0 else None,
        "events_per_cpu_s": round(received / cpu) if cpu > 0 else None,
        "alerts": alerts,
        "alerts_per_s": round(alerts / wall, 1) if wall > 0 else None,
        "source_dropped": int(msum(m, "vigil_source_dropped_total")),
        "parse_errors": int(msum(m, "vigil_parse_errors_total")),
        "latency_us": latency_percentiles(v.metrics0, m),
        "action_latency_us": histogram_percentiles(
            v.metrics0, runs_m, "vigil_event_to_first_action_latency_us"),
        "load_after": load_average(),
    })
    if sender is not None:
        result["sender"] = sender
    problems = []
    lost = events - received
    dropped = msum(m, "vigil_source_dropped_total")
    if sender is not None:
        dropped += sender.get("send_errors", 0)
    if source in ("udp", "pcap") and lost > 0:
        # Datagram sources may lose events, but only into counters: every event sent is
        # received or counted as dropped. The alert check is then skipped.
        result["lost"] = int(lost)
        if lost == dropped:
            result["truth_check"] = f"skipped: {int(lost)} events dropped and counted"
        else:
            result["truth_check"] = "FAILED"
            problems.append(f"{int(lost)} events lost, {int(dropped)} counted as dropped")
    else:
        if lost != 0:
            problems.append(f"received {int(received)} events, sent {events}")
        problems += check_truth(truth, counts)
        result["truth_check"] = "ok" if not problems else "FAILED"
    # Every alert starts a default-case run whose first action files it in a case. Alerts
    # raised by a timer (absence, end of input) have no receiving event, so only those
    # with a receive stamp (the ones in the event-to-alert histogram) are timed to their
    # first action.
    # Alerts of windows flushed at shutdown start their runs after the last metrics poll,
    # so the runner's own count at its stop is the one to compare.
    started = runs_started_at_stop(f"{run_dir}/vigild.log")
    if started is not None and started < alerts:
        problems.append(f"{alerts} alerts, but only {started} playbook runs started")
    stamped = latency_percentiles(v.metrics0, runs_m)
    act = result["action_latency_us"]
    if stamped and (act is None or act["runs"] < stamped["alerts"]):
        problems.append(f"{stamped['alerts']} alerts with a receive time, but only "
                        f"{act['runs'] if act else 0} runs reached their first playbook action")
    result["problems"] = problems
    return result


def anchors(args, wl, data, lists_dir, indicators):
    out = {}
    cmd = [args.linescan, "read", f"{data}/events.log"]
    if args.anchor_cpu:
        cmd = ["taskset", "-c", args.anchor_cpu] + cmd
    out["read"] = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                            text=True).stdout)
    # Hyperscan needs minutes and gigabytes to compile a million literals, so the anchor
    # runs only up to --hs-max-indicators.
    if lists_dir and os.path.exists(f"{lists_dir}/ioc_ips.txt") and \
            indicators <= args.hs_max_indicators:
        cmd = [args.linescan, "hs", f"{data}/events.log", f"{lists_dir}/ioc_ips.txt",
               f"{lists_dir}/ioc_domains.txt"]
        if args.anchor_cpu:
            cmd = ["taskset", "-c", args.anchor_cpu] + cmd
        out["hs"] = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                              text=True).stdout)
    return out


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--out", default="/tmp/vigil-e2e")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workloads", default="W1,W2,W3,W4")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--sources", default="file,tcp,udp,pcap")
    p.add_argument("--latency-loads", default="0.5,0.9",
                   help="fractions of the TCP maximum rate for the latency runs ('' = none)")
    p.add_argument("--cpus", default="", help="taskset CPU list for vigild")
    p.add_argument("--sender-cpus", default="", help="taskset CPU list for the sender")
    p.add_argument("--anchor-cpu", default="0")
    p.add_argument("--start-timeout", type=float, default=300)
    p.add_argument("--drain-timeout", type=float, default=300)
    p.add_argument("--hs-max-indicators", type=int, default=200_000,
                   help="skip the Hyperscan-only anchor above this many indicators")
    p.add_argument("--json", default="", help="write every result here as JSON lines")
    p.add_argument("--udp-rate", type=float, default=0,
                   help="UDP send rate; default half the TCP maximum of the same run")
    p.add_argument("--idle-source-bytes", type=int, default=0,
                   help="add an idle file source with this max_message_bytes; 65536 keeps "
                        "the zero-copy input stage, any other size makes it copy (A/B runs)")
    p.add_argument("--smoke", action="store_true",
                   help="CI mode: 20k events, small W4 indicator lists, file/tcp/udp, no "
                        "latency runs; checks alert counts only")
    args = p.parse_args()
    if args.smoke:
        if args.events == 1_000_000:
            args.events = 20_000
        args.sources = "file,tcp,udp" if args.sources == "file,tcp,udp,pcap" else args.sources
        args.latency_loads = ""
        args.udp_rate = args.udp_rate or 20_000
        args.anchor_cpu = ""
        args.workers = "2" if args.workers == "1,2" else args.workers
        # A vigild that does not answer within this is broken; fail fast in CI.
        args.start_timeout = min(args.start_timeout, 30)
    args.vigild = f"{args.build}/mgmt/vigild"
    args.vigilctl = f"{args.build}/mgmt/vigilctl"
    args.loadgen = f"{args.build}/bench/vigil_loadgen"
    args.linescan = f"{args.build}/bench/vigil_linescan"
    for b in (args.vigild, args.vigilctl, args.loadgen, args.linescan):
        if not os.access(b, os.X_OK):
            sys.exit(f"e2e: {b} is missing; build it first (bench/e2e.sh builds the release "
                     f"preset)")
    os.makedirs(args.out, exist_ok=True)
    results, failed = [], False
    sources = [s for s in args.sources.split(",") if s]
    loads = [float(x) for x in args.latency_loads.split(",") if x]
    jf = open(args.json, "w") if args.json else None
    log(f"machine: {os.cpu_count()} CPUs, load average {load_average():.2f}")
    for wl in [w for w in args.workloads.split(",") if w]:
        data = os.path.join(args.out, "data", f"{wl}-{args.events}-{args.seed}")
        if not os.path.exists(f"{data}/truth.json"):
            cmd = [args.loadgen, "gen", "--workload", wl, "--seed", str(args.seed),
                   "--events", str(args.events), "--out", data]
            if "pcap" in sources:
                cmd.append("--pcap")
            if args.smoke and wl == "W4":
                cmd += ["--ip-indicators", "2000", "--domain-indicators", "2000"]
            subprocess.run(cmd, check=True)
        with open(f"{data}/truth.json") as f:
            truth = json.load(f)
        log(f"\n== {wl}: {truth['events']} events, ground truth "
            f"{truth['alerts_total']} alerts, {truth['indicators']['ipv4']} + "
            f"{truth['indicators']['domains']} indicators, "
            f"{len(truth['alerts_by_rule'])} rules")
        a = anchors(args, wl, data, f"{data}/intel",
                    truth["indicators"]["ipv4"] + truth["indicators"]["domains"])
        log(f"   anchor read-only pass: {fmt_rate(a['read']['lines_per_s'])} lines/s (one core)")
        if "hs" in a:
            log(f"   anchor Hyperscan only: {fmt_rate(a['hs']['lines_per_s'])} lines/s, "
                f"{a['hs']['hits']} lines with a hit (ground truth {truth['ioc_events']})")
        rec = {"kind": "anchors", "workload": wl, **a}
        results.append(rec)
        if jf:
            jf.write(json.dumps(rec) + "\n")
        for workers in [int(x) for x in args.workers.split(",") if x]:
            tcp_max = None
            for source in sources:
                if source == "pcap" and not os.path.exists(f"{data}/events.pcap"):
                    continue
                rate = 0.0
                if source == "udp":
                    rate = args.udp_rate or (0.5 * tcp_max if tcp_max else 100_000)
                try:
                    r = run_one(args, wl, data, truth, workers, source, rate)
                    if source == "tcp":
                        tcp_max = r["events_per_s"]
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    log(f"   {source:5} w{workers}: ERROR {e}")
                    failed = True
                    continue
                rs = [r]
                if source == "tcp" and loads and r["events_per_s"]:
                    for frac in loads:
                        rate = frac * r["events_per_s"]
                        try:
                            rs.append(run_one(args, wl, data, truth, workers, source, rate,
                                              f"-at{int(frac * 100)}"))
                        except (RuntimeError, subprocess.CalledProcessError) as e:
                            log(f"   {source:5} w{workers} at {frac}: ERROR {e}")
                            failed = True
                for r in rs:
                    r["kind"] = "vigild"
                    lat = r["latency_us"] or {}
                    act = r["action_latency_us"] or {}
                    offered = f" offered {fmt_rate(r['offered_rate'])}/s" if r["offered_rate"] else ""
                    log(f"   {source:5} w{workers}{offered}: {fmt_rate(r['events_per_s'])} ev/s wall, "
                        f"{fmt_rate(r['events_per_cpu_s'])} ev/CPU-s, {r['alerts']} alerts "
                        f"({r['alerts_per_s']}/s), latency p50/p99/p99.9 "
                        f"{lat.get('p50', '-')}/{lat.get('p99', '-')}/{lat.get('p999', '-')} us, "
                        f"to first action {act.get('p50', '-')}/{act.get('p99', '-')}/"
                        f"{act.get('p999', '-')} us, "
                        f"RSS {r['rss_mib']} MiB, load {r['load_before']:.1f}->{r['load_after']:.1f}, "
                        f"truth {r['truth_check']}")
                    for prob in r["problems"]:
                        log(f"      {prob}")
                    if r["problems"]:
                        failed = True
                    if r["source"] in ("file", "tcp") and r.get("events_per_cpu_s") and \
                            "hs" in a and not r["offered_rate"]:
                        log(f"      ratio to Hyperscan-only anchor: "
                            f"{r['events_per_cpu_s'] / a['hs']['lines_per_s']:.2f}, to read-only: "
                            f"{r['events_per_cpu_s'] / a['read']['lines_per_s']:.3f}")
                    results.append(r)
                    if jf:
                        jf.write(json.dumps(r) + "\n")
                        jf.flush()
    if jf:
        jf.close()
    log("\nresult: " + ("FAILED (alerts differ from the ground truth or events were lost)"
                        if failed else "every run raised exactly the ground-truth alerts"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
