#!/usr/bin/env bash
# Memory over a long run and a leak check (make bench, section 6).
#   bench/mem/run.sh RESULTS_FILE
# Starts bench/mem/fake_many.py (4 open shards, no latency), then
#  1. bench/mem/consumer.lua consumes BENCH_MEM_RECORDS (200000) records with
#     stream:run defaults, sampling its VmRSS 20 times; appends
#       MEM <records> <RSS KiB at 10%> <at 50%> <at 100%> <VmHWM KiB> <seconds> <Lua heap KiB at 10%> <at 100%>
#  2. the same script for BENCH_VG_RECORDS (5000) records under valgrind
#     memcheck (definite and indirect leaks are errors); appends
#       VALGRIND <records> <exit status> <definitely lost bytes> <indirectly lost bytes> <error count> <seconds>
#     and keeps the log in bench/out/valgrind.log.
# LUA, LUA_PATH and LUA_CPATH as bench/run.sh sets them.
set -euo pipefail
results=${1:?results file}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lua=${LUA:-lua5.4}
records=${BENCH_MEM_RECORDS:-200000}
vg_records=${BENCH_VG_RECORDS:-5000}
shards=4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-mem.XXXXXX")
fake_pid=
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

start_fake() {  # records per shard
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
  /usr/bin/python3 "$here/fake_many.py" --shards "$shards" --records "$1" --lifetime 900 >"$tmp/fake" &
  fake_pid=$!
  for _ in $(seq 100); do
    grep -q '^pid=' "$tmp/fake" && break
    sleep 0.1
  done
  local line
  line=$(head -1 "$tmp/fake")
  port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$line")
  arn=$(sed -n 's/.*arn=\(.*\)$/\1/p' <<<"$line")
  [ -n "$port" ] && [ -n "$arn" ] || { echo "mem: fake_many.py did not start: $line" >&2; exit 1; }
}

# 1. RSS over a long run.
echo "mem: stream:run over $records records ($shards shards), sampling RSS" >&2
start_fake $(( (records + shards - 1) / shards ))
"$lua" "$here/consumer.lua" "http://127.0.0.1:$port" "$arn" "$records" 20 >"$tmp/run"
awk -v n="$records" '
  /^SAMPLE/ { rss[$2] = $3; heap[$2] = $4 }
  /^MEMRUN/ { hwm = $3; secs = $4 }
  END {
    a = int(n / 10); b = int(n / 2)
    if (!(a in rss) || !(b in rss) || !(n in rss) || hwm == "") exit 1
    printf "MEM %d %d %d %d %d %s %d %d\n", n, rss[a], rss[b], rss[n], hwm, secs, heap[a], heap[n]
  }' "$tmp/run" >>"$results" || { echo "mem: the run failed:" >&2; cat "$tmp/run" >&2; exit 1; }
grep '^SAMPLE' "$tmp/run" | sed 's/^SAMPLE/MEMSAMPLE/' >>"$results"

# 2. valgrind on a shorter run of the same script.
echo "mem: the same consumer under valgrind, $vg_records records" >&2
start_fake $(( (vg_records + shards - 1) / shards ))
log=$root/bench/out/valgrind.log
start=$(date +%s.%N)
rc=0
valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --suppressions="$root/scripts/valgrind.supp" --log-file="$log" \
  "$lua" "$here/consumer.lua" "http://127.0.0.1:$port" "$arn" "$vg_records" 5 >"$tmp/vg" || rc=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
bytes() {  # "definitely lost: 1,234 bytes in 5 blocks" -> 1234 (0 when absent: nothing leaked)
  sed -n "s/.*$1 lost: \([0-9,]*\) bytes.*/\1/p" "$log" | tr -d , | tail -1 | grep . || echo 0
}
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d , | tail -1)
printf 'VALGRIND %d %d %d %d %s %.1f\n' "$vg_records" "$rc" "$(bytes definitely)" "$(bytes indirectly)" \
  "${errors:-?}" "$secs" >>"$results"
