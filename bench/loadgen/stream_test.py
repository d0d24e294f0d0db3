#!/usr/bin/env python3
"""Tests of `vigil_loadgen stream`, run by ctest as bench_loadgen_stream.

  stream_test.py BUILD_DIR WORK_DIR

Checks that the same seed writes the same bytes and another seed does not, that segment
0 equals the `gen` file of the same size, and that event time never goes back across
segment boundaries. Then it checks the ground truth of a run cut in the middle of a
segment against an independent count: this script parses the lines and applies the rule
semantics of docs/rules.md to them without knowing about segments.
"""
import collections
import datetime
import json
import os
import re
import subprocess
import sys

SEGMENT = 20_000
EVENTS = 70_000  # three whole segments and half of a fourth
COMMON = ["--workload", "W3", "--scans-per-million", "2000", "--beacons-per-million", "2000",
          "--privesc-per-million", "2000", "--ip-indicators", "2000",
          "--domain-indicators", "2000"]
SHAPES = {
    # 20 events/s of event time: a segment spans 1000 s, so attacks fall at random places.
    "slow": COMMON + ["--event-rate", "20"],
    # 2000 events/s: a segment spans 10 s, shorter than the attacks, so every attack starts
    # at the segment's start and runs past its last background event. Brute-force sources
    # repeat from one segment to the next, so a gap too short would merge their windows.
    "fast": COMMON + ["--event-rate", "2000"],
}

RULE = "b3e7c000-0000-4000-8000-%012d"
MONTHS = {m: i + 1 for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])}
IPV4 = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\b")
TENANT_HOST = re.compile(r"\.t(\d\d)\.bench ")


def stream(loadgen, shape, out, seed, events=EVENTS, segment=SEGMENT):
    truth = out + ".truth.json"
    subprocess.run([loadgen, "stream", *shape, "--seed", str(seed), "--segment-events",
                    str(segment), "--events", str(events), "--output", out, "--truth", truth],
                   check=True, capture_output=True)
    with open(truth) as f:
        return json.load(f)


def rfc3339_ns(text):
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10**9 + t.microsecond * 1000


def rfc3164_ns(text):
    # "Jan  1 00:00:07": no year in the stamp, and the stream starts on 2026-01-01.
    month, day, clock = text.split()
    h, m, s = (int(x) for x in clock.split(":"))
    t = datetime.datetime(2026, MONTHS[month], int(day), h, m, s,
                          tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10**9


def parse(line):
    """Parse one line into (time_ns, tenant, kind, key, query). The kind names what the
    line feeds (ssh_fail, deny, dns, logon, priv, ...), and query is set for DNS only."""
    if line.startswith("{"):
        doc = json.loads(line)
        return rfc3339_ns(doc["@timestamp"]), doc["org"], "dns", doc["src_ip"], doc["query"]
    tenant = "t" + TENANT_HOST.search(line).group(1)
    if line.startswith("<38>"):
        t = rfc3164_ns(line[4:19])
        m = re.search(r"Failed password for (?:invalid user )?\S+ from (\S+) ", line)
        return t, tenant, "ssh_fail" if m else "ssh", m.group(1) if m else None, None
    t = rfc3339_ns(line.split(" ", 2)[1])
    if line.startswith("<134>1 "):
        src = re.search(r"\bsrc=(\S+)", line).group(1)
        return t, tenant, "deny" if " act=deny " in line else "allow", src, None
    if line.startswith("<86>1 "):
        doc = json.loads(line[line.index("{"):])
        kind = {4624: "logon", 4672: "priv"}.get(doc["EventID"], "windows")
        return t, tenant, kind, doc["TargetUserName"], None
    return t, tenant, "web", None, None


def event_count(events, span_ns, threshold):
    """Sigma event_count: a sliding window per group with both edges included; reaching
    the threshold raises one alert and empties the window."""
    windows = collections.defaultdict(collections.deque)
    alerts = 0
    for t, group in events:
        w = windows[group]
        while w and w[0] < t - span_ns:
            w.popleft()
        w.append(t)
        if len(w) >= threshold:
            alerts += 1
            w.clear()
    return alerts


def logon_then_privilege(events, span_ns):
    """temporal_ordered [logon, privilege] within the span; a completed sequence raises
    one alert and starts over, and a newer logon replaces an older one."""
    logons, alerts = {}, 0
    for t, kind, group in events:
        if kind == "logon":
            logons[group] = t
        elif group in logons and t - logons[group] <= span_ns:
            alerts += 1
            del logons[group]
    return alerts


def count_alerts(path, ioc_ips, ioc_domains):
    ssh, deny, beacon, sequence = [], [], [], []
    intel_hits = 0
    last_t, backwards = 0, 0
    lines = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            lines += 1
            t, tenant, kind, key, query = parse(line)
            # RFC 3164 stamps keep whole seconds, so compare at that resolution.
            second = t // 10**9
            if second < last_t:
                backwards += 1
            last_t = max(last_t, second)
            ioc_domain = kind == "dns" and query in ioc_domains
            if ioc_domain or any(ip in ioc_ips for ip in IPV4.findall(line)):
                intel_hits += 1
            if kind == "ssh_fail":
                ssh.append((t, (tenant, key)))
            elif kind == "deny":
                deny.append((t, (tenant, key)))
            elif ioc_domain:
                beacon.append((t, (tenant, key)))
            elif kind in ("logon", "priv"):
                sequence.append((t, kind, (tenant, key)))
    counts = {
        RULE % 2: event_count(ssh, 60 * 10**9, 5),
        RULE % 4: event_count(deny, 30 * 10**9, 20),
        RULE % 6: event_count(beacon, 600 * 10**9, 10),
        RULE % 9: logon_then_privilege(sequence, 300 * 10**9),
        RULE % 10: intel_hits,
    }
    return counts, lines, backwards


def check_shape(loadgen, work, name, shape, check):
    os.makedirs(work, exist_ok=True)
    a, b, c = (os.path.join(work, n) for n in ("a.log", "b.log", "c.log"))
    truth = stream(loadgen, shape, a, 11)
    stream(loadgen, shape, b, 11)
    stream(loadgen, shape, c, 12)
    with open(a, "rb") as fa, open(b, "rb") as fb, open(c, "rb") as fc:
        data_a, data_b, data_c = fa.read(), fb.read(), fc.read()
    check(data_a == data_b, f"{name}: the same seed writes the same stream")
    check(data_a != data_c, f"{name}: another seed writes another stream")

    gen_dir = os.path.join(work, "gen")
    subprocess.run([loadgen, "gen", *shape, "--seed", "11", "--events", str(SEGMENT),
                    "--out", gen_dir], check=True, capture_output=True)
    with open(os.path.join(gen_dir, "events.log"), "rb") as f:
        first = f.read()
    check(data_a.startswith(first) and len(data_a) > len(first),
          f"{name}: segment 0 equals the gen file of the same size")

    with open(os.path.join(gen_dir, "intel", "ioc_ips.txt")) as f:
        ioc_ips = {x.strip() for x in f if x.strip() and not x.startswith("#")}
    with open(os.path.join(gen_dir, "intel", "ioc_domains.txt")) as f:
        ioc_domains = {x.strip() for x in f if x.strip() and not x.startswith("#")}
    counts, lines, backwards = count_alerts(a, ioc_ips, ioc_domains)
    check(lines == EVENTS == truth["events"], f"{name}: {lines} lines written, "
          f"{truth['events']} in the ground truth, {EVENTS} requested")
    check(truth["segments"]["complete"] == 3 and
          truth["segments"]["partial_lines"] == EVENTS - 3 * SEGMENT,
          f"{name}: segments in the ground truth: {truth['segments']}")
    check(backwards == 0, f"{name}: event time goes back {backwards} times")
    for rule, n in sorted(counts.items()):
        expected = truth["alerts_by_rule"].get(rule)
        check(n > 0 and n == expected,
              f"{name}: rule {rule}: independent count {n}, ground truth {expected}")
    others = {r: n for r, n in truth["alerts_by_rule"].items() if r not in counts and n != 0}
    check(not others, f"{name}: rules expected to stay silent: {others or 'all are'}")


def main():
    build, work = sys.argv[1], sys.argv[2]
    loadgen = os.path.join(build, "bench", "vigil_loadgen")
    os.makedirs(work, exist_ok=True)
    failures = []

    def check(cond, what):
        print(("ok: " if cond else "FAILED: ") + what, flush=True)
        if not cond:
            failures.append(what)

    for name, shape in SHAPES.items():
        check_shape(loadgen, os.path.join(work, name), name, shape, check)
    print("result: " + ("ok" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
