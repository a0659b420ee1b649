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
# Busy and total CPU ticks of the whole machine (first line of /proc/stat), to tell how full the cores were.
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
read -r busy0 all0 < <(cpu_ticks)

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
read -r busy1 all1 < <(cpu_ticks)
busy_pct=$(( 100 * (busy1 - busy0) / (all1 - all0 > 0 ? all1 - all0 : 1) ))
failed=0
{
  printf '%-14s %8s  %s\n' target seconds result
  while read -r target secs rc; do
    if [ "$rc" -eq 0 ]; then res=passed; else res=FAILED; failed=1; fi
    printf '%-14s %8s  %s\n' "$target" "$secs" "$res"
  done < "$logs/results"
  printf '%-14s %8s\n' "wall (lanes)" "$total"
  printf '%-14s %7s%%  %s\n' "cpu busy" "$busy_pct" "of $(nproc) cores over the run"
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
