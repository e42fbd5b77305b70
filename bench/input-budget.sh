#!/usr/bin/env bash
# Issue 23's reading budget, measured: time and peak RSS of gate/diff/report
# on the inputs the issue attacked with (2000 copies of a real run file, a
# 255 MiB padding file, a run of 10^6 distinct stacks), with the default
# --max-input (refused) and with it raised (read). Needs python3 and GNU time
# (/usr/bin/time). Run it on a quiet machine; it prints `uptime` first.
#
#   bench/input-budget.sh REAPER RUN.json [WORKDIR]
#
# REAPER: a release build (target/release/reaper). RUN.json: a real run file
# of about 534 KB, e.g. from `sudo reaper record --victim 1G --runs 16 -o
# DIR` (DIR/run.json). WORKDIR (default /tmp/reaper-input-budget) needs about
# 1.6 GB of disk.
set -euo pipefail
reaper=$(realpath "$1")
run=$(realpath "$2")
work=${3:-/tmp/reaper-input-budget}
mkdir -p "$work"
cd "$work"
uptime

if [ ! -e copies/run-2000.json ]; then
    mkdir -p copies
    for i in $(seq 1 2000); do cp "$run" "copies/run-$i.json"; done
fi
python3 - "$run" <<'EOF'
import json, os, sys
run = json.load(open(sys.argv[1]))
base = json.dumps(run)
target = 255 << 20
if not os.path.exists("pad-unknown.json"):
    # 255 MiB: zeros in a field reaper does not know (skipped when read).
    n = (target - len(base) - 20) // 2
    open("pad-unknown.json", "w").write('{"padding":[' + "0," * (n - 1) + "0]," + base[1:])
if not os.path.exists("pad-frames.json"):
    # 255 MiB: empty frame names in one stack (8x amplification).
    r = json.loads(base)
    r["episodes"][0]["contexts"][0]["stacks"][0]["frames"] = []
    b = json.dumps(r)
    i = b.index('"frames": []')
    n = (target - len(b)) // 3
    open("pad-frames.json", "w").write(b[:i] + '"frames": [' + '"",' * (n - 1) + '""]' + b[i + 12:])
if not os.path.exists("stacks1m.json"):
    # 10^6 distinct stacks in one context of one episode, pretty-printed
    # (as reaper writes run files).
    r = json.loads(base)
    r["episodes"][0]["contexts"][0]["stacks"] = [
        {"frames": ["do_exit", "mmput", "exit_mmap", "f%d" % i], "samples": 1, "period_ns": 250000}
        for i in range(1000000)
    ]
    open("stacks1m.json", "w").write(json.dumps(r, indent=2))
EOF

measure() {
    echo "== reaper $*"
    /usr/bin/time -f "   elapsed %e s, user %U s, sys %S s, max RSS %M KB, exit %x" \
        "$reaper" "$@" >/dev/null 2>err.txt || true
    grep -v '^reaper: wrote\|^reaper: compare' err.txt | head -c 400
    echo
}

big="--max-input 4G,episodes=100000"
measure gate --baseline copies --candidate copies
measure diff copies copies
measure gate --baseline copies --candidate copies $big
measure diff copies copies $big
measure report pad-unknown.json
measure report pad-frames.json
measure report pad-unknown.json --max-input 300M
measure report pad-frames.json --max-input 300M
measure diff stacks1m.json "$run" -o diff-out
measure diff stacks1m.json "$run" -o diff-out --max-input 512M
