#!/usr/bin/env python3
"""System calls per client request and peer frames of a 3-node cluster under sessiond-bench.

    python3 tools/bench/peer_syscalls.py --sessiond build/bin/sessiond --mode backup-sync \
        --out /tmp/ps

Runs sessiond-bench (--modes MODE, 3 nodes, 2000 sessions, 2 s warm-up, 10 s measured) with a kept
work dir; once the measured interval has begun, counts for 3 s the sendto, sendmsg, recvfrom and
epoll_wait calls of the three daemons with perf's syscall tracepoints (`perf stat -e
syscalls:sys_enter_*`: no ptrace, so the daemons run at full speed, unlike under strace), and
reads their client frame counters (/metrics) and peer frame counters (/cluster) around that
window. Needs perf and the permission to use tracepoints (root, or perf_event_paranoid <= 1).
In this tree peer links write with sendto (one buffer) as client connections do; before, peer
writes were the sendmsg calls.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import urllib.request

EVENTS = ["sendto", "sendmsg", "recvfrom", "epoll_wait"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessiond", default="build/bin/sessiond")
    parser.add_argument("--bench", default="build/bin/sessiond-bench")
    parser.add_argument("--mode", default="backup-sync")
    parser.add_argument("--out", required=True, help="sessiond-bench's --out-dir")
    parser.add_argument("--window-s", type=float, default=3)
    args = parser.parse_args()

    work_dir = os.path.join(args.out, "wd")
    os.makedirs(work_dir, exist_ok=True)
    bench = subprocess.Popen(
        [args.bench, "--modes", args.mode, "--nodes", "3", "--sessions", "2000", "--warmup-s",
         "2", "--duration-s", "10", "--no-charts", "--out-dir", args.out, "--sessiond",
         args.sessiond, "--work-dir", work_dir, "--keep-work-dir"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in bench.stdout:  # progress lines end in \r, which splits lines here too
        lines.append(line)
        if "measuring" in line:
            break
    ports = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work_dir, "*", "n*.port")))]

    def counters():
        total = [0, 0, 0, 0]
        for port in ports:
            admin = f"http://127.0.0.1:{port['admin']}"
            metrics = urllib.request.urlopen(admin + "/metrics").read().decode()
            for i, name in enumerate(["received", "sent"]):
                total[i] += int(re.search(rf"^sessiond_client_{name}_frames_total (\d+)", metrics,
                                          re.M).group(1))
            cluster = urllib.request.urlopen(admin + "/cluster").read().decode()
            total[2] += sum(int(x) for x in re.findall(r'"frames_in":(\d+)', cluster))
            total[3] += sum(int(x) for x in re.findall(r'"frames_out":(\d+)', cluster))
        return total

    before = counters()
    perf = subprocess.run(
        ["perf", "stat", "-x,", "-e", ",".join(f"syscalls:sys_enter_{e}" for e in EVENTS), "-p",
         ",".join(str(p["pid"]) for p in ports), "--", "sleep", str(args.window_s)],
        capture_output=True, text=True)
    after = counters()
    for line in bench.stdout:
        lines.append(line)
    bench.wait()

    requests, _, peer_in, peer_out = (a - b for a, b in zip(after, before))
    calls = {}
    for line in perf.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            calls[fields[2].split("sys_enter_")[-1]] = int(fields[0])
    per_request = {k: round(v / max(requests, 1), 3) for k, v in calls.items()}
    print(f"{args.mode}: 3 nodes, {args.window_s:g} s: {requests} client requests, peer frames "
          f"in {peer_in} out {peer_out} ({peer_out / max(requests, 1):.3f} per request)")
    print(f"  system calls: {calls}")
    print(f"  per client request: {per_request}")
    print("".join("  " + l for l in lines if re.match(r"^(backup|delta|standalone|redis)", l)),
          end="")


if __name__ == "__main__":
    main()
