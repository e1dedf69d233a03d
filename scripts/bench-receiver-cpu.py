#!/usr/bin/env python3
# CPU time per operation of the receiver's ingest benchmarks in two trees
# (say, before and after a change), interleaved round by round. CPU time
# of the benchmark process (user+sys, GOMAXPROCS=1, GC included) does not
# count time spent waiting for a core on a shared machine, which
# wall-clock ns/op does.
#
#   git worktree add --detach /tmp/old <commit>
#   scripts/bench-receiver-cpu.py /tmp/old . [rounds]
import os, resource, subprocess, statistics, sys
if len(sys.argv) < 3:
    sys.exit("usage: bench-receiver-cpu.py OLD_TREE NEW_TREE [ROUNDS]")
bins = {}
for ver, tree in (("old", sys.argv[1]), ("new", sys.argv[2])):
    pkg = os.path.join(os.path.abspath(tree), "receiver", "fastdeployreceiver")
    binary = f"/tmp/bench-receiver-{ver}-{os.getpid()}.test"
    subprocess.run(["go", "test", "-c", "-o", binary, "."], cwd=pkg, check=True)
    bins[ver] = (binary, pkg)
benches = [("BenchmarkIngestAnsibleRun/fastdeploy$", 6, 20000),
           ("BenchmarkIngestAnsibleRun/contrib_stanza_json_parser$", 6, 4000),
           ("BenchmarkIngestLifecycle$", 8, 10000)]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
def cpu(binary, cwd, bench, n):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, "-test.run", "XXX", "-test.bench", bench, "-test.cpu", "1",
                    "-test.benchtime", f"{n}x", "-test.count", "1"], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
res = {}
for r in range(rounds):
    for bench, events, n in benches:
        for ver, (binary, cwd) in bins.items():
            c = cpu(binary, cwd, bench, n) - cpu(binary, cwd, bench, 1)
            res.setdefault((bench, ver), []).append(c / (n - 1))
print(f"{'benchmark':55s} {'old µs/op':>10s} {'new µs/op':>10s} {'old ev/CPU-s':>13s} {'new ev/CPU-s':>13s} {'new/old speed':>13s}")
for bench, events, n in benches:
    o = statistics.median(res[(bench, 'old')]); w = statistics.median(res[(bench, 'new')])
    print(f"{bench:55s} {o*1e6:10.1f} {w*1e6:10.1f} {events/o:13,.0f} {events/w:13,.0f} {o/w:12.2f}x")
    print("   samples old:", " ".join(f"{x*1e6:.0f}" for x in res[(bench,'old')]), " new:", " ".join(f"{x*1e6:.0f}" for x in res[(bench,'new')]))
for binary, _ in bins.values():
    os.remove(binary)
