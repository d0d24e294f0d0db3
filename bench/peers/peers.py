#!/usr/bin/env python3
"""Runs the peers on the lines of one generated workload and prints their rates and, for
the brute-force rule, their alert counts against the ground truth (bench/peers/run_peers.sh
installs them and calls this; docs/benchmarks.md shows the results).

Peers: SEC with the 5-failures-in-60-s rule; syslog-ng parsing the lines, and parsing with
a PatternDB correlation context for the same rule; rsyslog (unpacked .deb) parsing the
lines from a TCP listener. Every peer runs pinned with taskset to --cpu.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def cpu_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def render(template, out, **values):
    with open(template) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@" + k + "@", str(v))
    with open(out, "w") as f:
        f.write(text)


def wait_for_lines(proc, path, expected, timeout, stable_s=2.0):
    """Polls `path` until it has `expected` lines, or stops growing for stable_s."""
    deadline = time.time() + timeout
    last, since = -1, time.time()
    while time.time() < deadline:
        n = count_lines(path)
        if n >= expected:
            return n, time.time()
        if n != last:
            last, since = n, time.time()
        elif time.time() - since > stable_s and n > 0:
            return n, since
        if proc.poll() is not None:
            return n, time.time()
        time.sleep(0.05)
    return count_lines(path), time.time()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_sec(args, events, lines):
    out = os.path.join(args.out, "sec")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    render(f"{HERE}/sec_bruteforce.sec", f"{out}/rules.sec", ALERTS=f"{out}/alerts.txt")
    cmd = ["taskset", "-c", args.cpu, "sec", f"--conf={out}/rules.sec", f"--input={events}",
           "--notail", "--log=/dev/null"]
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M"] + cmd, capture_output=True,
                       text=True)
    wall = time.time() - t0
    stats = r.stderr.strip().splitlines()[-1].split()
    cpu = float(stats[1]) + float(stats[2])
    return {"peer": "sec", "what": "brute-force rule (SingleWithThreshold)", "lines": lines,
            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "lines_per_cpu_s": round(lines / cpu) if cpu else None,
            "rss_mib": round(int(stats[3]) / 1024, 1), "alerts": count_lines(f"{out}/alerts.txt")}


def run_syslogng(args, events, lines, mode):
    out = os.path.join(args.out, f"syslog-ng-{mode}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    render(f"{HERE}/syslog-ng-{mode}.conf", f"{out}/syslog-ng.conf", INPUT=events,
           OUT=out, PDB=f"{HERE}/ssh_bruteforce.pdb")
    cmd = ["taskset", "-c", args.cpu, "syslog-ng", "-F", "--no-caps", "-f", f"{out}/syslog-ng.conf",
           "-R", f"{out}/persist", "-p", f"{out}/pid", "-c", f"{out}/ctl"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{out}/stderr", "w"))
    n, t1 = wait_for_lines(proc, f"{out}/parsed.out", lines, args.timeout)
    cpu = cpu_of(proc.pid)
    rss = 0
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    stop(proc)
    res = {"peer": "syslog-ng", "what": "parse" if mode == "parse" else "parse + PatternDB",
           "lines": n, "wall_s": round(t1 - t0, 3), "cpu_s": round(cpu, 3),
           "lines_per_cpu_s": round(n / cpu) if cpu else None, "rss_mib": round(rss, 1)}
    if mode == "pdb":
        res["alerts"] = count_lines(f"{out}/alerts.out")
    if n < lines:
        res["error"] = f"wrote {n} of {lines} lines; see {out}/stderr"
    return res


def run_rsyslog(args, events, lines):
    root = args.rsyslog_root
    rsyslogd = f"{root}/usr/sbin/rsyslogd"
    if not os.path.exists(rsyslogd):
        return {"peer": "rsyslog", "error": f"{rsyslogd} missing (run_peers.sh unpacks it)"}
    out = os.path.join(args.out, "rsyslog")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    port = free_port()
    render(f"{HERE}/rsyslog-parse.conf", f"{out}/rsyslog.conf", MODDIR=f"{root}/usr/lib/x86_64-linux-gnu/rsyslog",
           PORT=port, OUT=out)
    env = dict(os.environ, LD_LIBRARY_PATH=f"{root}/usr/lib/x86_64-linux-gnu")
    cmd = ["taskset", "-c", args.cpu, rsyslogd, "-n", "-M",
           f"{root}/usr/lib/x86_64-linux-gnu/rsyslog", "-f", f"{out}/rsyslog.conf", "-i",
           f"{out}/pid"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{out}/stderr", "w"),
                            env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    cpu0 = cpu_of(proc.pid)
    t0 = time.time()
    send = [args.loadgen, "send", "--file", events, "--proto", "tcp", "--target",
            f"127.0.0.1:{port}"]
    if args.sender_cpu:
        send = ["taskset", "-c", args.sender_cpu] + send
    subprocess.run(send, check=True, capture_output=True)
    n, t1 = wait_for_lines(proc, f"{out}/parsed.out", lines, args.timeout)
    cpu = cpu_of(proc.pid) - cpu0
    stop(proc)
    res = {"peer": "rsyslog", "what": "parse (TCP loopback)", "lines": n,
           "wall_s": round(t1 - t0, 3), "cpu_s": round(cpu, 3),
           "lines_per_cpu_s": round(n / cpu) if cpu else None}
    if n < lines:
        res["error"] = f"wrote {n} of {lines} lines; see {out}/stderr"
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--w1", required=True, help="folder of a generated W1 workload (parse runs)")
    p.add_argument("--w2", required=True, help="folder of a generated W2 workload (rule runs)")
    p.add_argument("--out", default="/tmp/vigil-peers")
    p.add_argument("--cpu", default="1")
    p.add_argument("--sender-cpu", default="0")
    p.add_argument("--loadgen", default="build/release/bench/vigil_loadgen")
    p.add_argument("--rsyslog-root", default="/tmp/vigil-rsyslog-root")
    p.add_argument("--peers", default="sec,syslog-ng-parse,syslog-ng-pdb,rsyslog")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    with open(f"{args.w2}/truth.json") as f:
        truth = json.load(f)
    with open(f"{args.w1}/truth.json") as f:
        w1_lines = json.load(f)["events"]
    expected = truth["alerts_by_rule"].get(truth["bruteforce_rule"])
    lines = truth["events"]
    w1, w2 = f"{args.w1}/events.log", f"{args.w2}/events.log"
    results = []
    for peer in args.peers.split(","):
        if peer == "sec":
            r = run_sec(args, w2, lines)
        elif peer == "syslog-ng-parse":
            r = run_syslogng(args, w1, w1_lines, "parse")
        elif peer == "syslog-ng-pdb":
            r = run_syslogng(args, w2, lines, "pdb")
        elif peer == "rsyslog":
            r = run_rsyslog(args, w1, w1_lines)
        else:
            sys.exit(f"peers: unknown peer '{peer}': use sec, syslog-ng-parse, syslog-ng-pdb, rsyslog")
        r["load"] = os.getloadavg()[0]
        if "alerts" in r and expected is not None:
            r["alerts_expected"] = expected
            r["alerts_match"] = r["alerts"] == expected
        results.append(r)
        print(json.dumps(r), flush=True)
    bad = [r for r in results if r.get("alerts_match") is False or "error" in r]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
