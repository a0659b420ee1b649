#!/usr/bin/env bash
# Run make targets in parallel lanes and print how long each took.
#
#   scripts/run_suites.sh "integration" "sanity sanity-2.19 units units-2.19 lint build molecule"
#
# Each argument is one lane: its targets run one after another, the lanes run side by side
# (the integration suite spends much of its time waiting on servers and subprocesses, so a
# second lane keeps both cores busy). Every target writes build/test-logs/<target>.log; a
# failed target's log tail is printed at the end and the script exits non-zero. The table
# of wall-clock seconds per target goes to stdout and build/test-logs/timings.txt.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=build/test-logs
rm -rf "$logs" && mkdir -p "$logs"
start=$(date +%s)
# Busy, total and stolen CPU ticks of the whole machine (first line of /proc/stat): how full the cores were,
# and how much of the time a virtual machine's host gave to other guests (steal).
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
# The same fixed CPU work before every run: its time tells a slower host (or a busier one) from a slower suite.
reference=$(python3 -c 'import time; t = time.process_time(); sum(i * i for i in range(3000000)); print(f"{time.process_time() - t:.2f}")')
read -r busy0 all0 steal0 < <(cpu_ticks)

run_lane() {
  local target t0 rc
  for target in $1; do
    t0=$(date +%s)
    echo "==> $target started"
    make --no-print-directory "$target" > "$logs/$target.log" 2>&1
    rc=$?
    printf '%s %s %s\n' "$target" "$(( $(date +%s) - t0 ))" "$rc" >> "$logs/results"
    if [ $rc -eq 0 ]; then echo "==> $target passed ($(( $(date +%s) - t0 )) s)"
    else echo "==> $target FAILED ($(( $(date +%s) - t0 )) s): $logs/$target.log"; fi
  done
}

pids=()
for lane in "$@"; do
  run_lane "$lane" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

total=$(( $(date +%s) - start ))
read -r busy1 all1 steal1 < <(cpu_ticks)
span=$(( all1 - all0 > 0 ? all1 - all0 : 1 ))
busy_pct=$(( 100 * (busy1 - busy0) / span ))
steal_pct=$(( 100 * (steal1 - steal0) / span ))
cpu_seconds=$(( (busy1 - busy0) / $(getconf CLK_TCK) ))
failed=0
{
  printf '%-14s %8s  %s\n' target seconds result
  while read -r target secs rc; do
    if [ "$rc" -eq 0 ]; then res=passed; else res=FAILED; failed=1; fi
    printf '%-14s %8s  %s\n' "$target" "$secs" "$res"
  done < "$logs/results"
  printf '%-14s %8s\n' "wall (lanes)" "$total"
  printf '%-14s %7s%%  %s\n' "cpu busy" "$busy_pct" "of $(nproc) cores over the run ($cpu_seconds CPU-seconds)"
  printf '%-14s %7s%%  %s\n' "cpu steal" "$steal_pct" "taken by the virtual machine's host for others"
  printf '%-14s %7s s  %s\n' "reference" "$reference" "fixed CPU work before the run (compare runs: a slower host shows here)"
} | tee "$logs/timings.txt"
grep -q ' [1-9][0-9]*$' "$logs/results" && failed=1
if [ $failed -ne 0 ]; then
  while read -r target secs rc; do
    [ "$rc" -eq 0 ] && continue
    echo
    echo "===== $target failed; last 60 lines of $logs/$target.log ====="
    tail -n 60 "$logs/$target.log"
  done < "$logs/results"
  exit 1
fi
