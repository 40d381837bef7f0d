#!/usr/bin/env bash
# End-to-end benchmark; runs inside scripts/with-ddb-local (needs DDB_LOCAL_ENDPOINT).
#   bench/e2e/run.sh CHANGES RESULTS_FILE
# Pre-writes CHANGES changes of small items (~500 bytes), then has each consumer
# read all of them from TRIM_HORIZON under /usr/bin/time (plus a startup-only
# run of each, N = 0, and ours driven as the npm package is, by a
# fetch_stream_state loop; ours under Lua 5.4 and LuaJIT); then the same over
# another table of CHANGES changes of large items (~4.5 KB, names ending in
# _large). Appends to RESULTS_FILE lines
#   E2E <name> <user s> <sys s> <peak RSS KiB> <wall s> <events> <polls>
# then runs bench/e2e/latency.lua (idle polling, write -> event latency), which adds
#   IDLE <GetRecords per shard per s> <shards> <seconds> <calls>
#   IDLE_STEADY <GetRecords per shard per s> <median gap between polls s> <polls>
#   LATENCY <p50 ms> <p99 ms> <max ms> <events>
set -euo pipefail
changes=${1:?changes}
results=${2:?results file}
: "${DDB_LOCAL_ENDPOINT:?run me under scripts/with-ddb-local}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lua=${LUA:-lua5.4}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

measure() {  # name N command...
  local name=$1 n=$2; shift 2
  echo "e2e: $name consuming $n changes" >&2
  /usr/bin/time -f "%U %S %M %e" -o "$tmp/time" "$@" >"$tmp/out"
  local events polls
  events=$(awk '/^EVENTS/ {print $2}' "$tmp/out")
  polls=$(awk '/^EVENTS/ {print $4}' "$tmp/out")
  if [ -z "$events" ] || [ "$events" -lt "$n" ]; then
    echo "e2e: $name saw ${events:-0} of $n events" >&2
    cat "$tmp/out" >&2
    return 1
  fi
  read -r user sys rss wall <"$tmp/time"
  echo "E2E $name $user $sys $rss $wall $events $polls" >>"$results"
}

for size in small large; do
  if [ $size = small ]; then pad=0 suffix=; else pad=4000 suffix=_large; fi
  echo "e2e: pre-writing $changes changes of $size items into DynamoDB Local ($DDB_LOCAL_ENDPOINT)" >&2
  "$lua" "$here/prewrite.lua" "$DDB_LOCAL_ENDPOINT" "bench_e2e$suffix" "$changes" "$pad" >"$tmp/prewrite"
  arn=$(sed -n 's/^STREAM_ARN=//p' "$tmp/prewrite")
  n=$(sed -n 's/^CHANGES=//p' "$tmp/prewrite")
  node_c=(env NODE_NO_WARNINGS=1 node "$here/node_consumer.js" "$DDB_LOCAL_ENDPOINT" "$arn")
  lua_c=("$lua" "$here/lua_consumer.lua" "$DDB_LOCAL_ENDPOINT" "$arn")
  luajit_c=(env LUA_CPATH="$root/build-luajit/?.so;;" luajit "$here/lua_consumer.lua" "$DDB_LOCAL_ENDPOINT" "$arn")
  # Startup only (N = 0), then the full read; each consumer starts from TRIM_HORIZON.
  if [ $size = small ]; then
    measure node_startup 0 "${node_c[@]}" 0
    measure ours_startup 0 "${lua_c[@]}" 0
  fi
  measure "node_dynamodb_stream$suffix" "$n" "${node_c[@]}" "$n"
  measure "ours$suffix" "$n" "${lua_c[@]}" "$n"
  measure "ours_fetch$suffix" "$n" env BENCH_MODE=fetch "${lua_c[@]}" "$n"
  # One page per shard per fetch, as the npm package reads: what the pages a
  # fetch holds (max_pages_per_shard, 10 by default) cost in peak RSS.
  measure "ours_pages1$suffix" "$n" env BENCH_MAX_PAGES=1 "${lua_c[@]}" "$n"
  measure "ours_fetch_pages1$suffix" "$n" env BENCH_MODE=fetch BENCH_MAX_PAGES=1 "${lua_c[@]}" "$n"
  measure "ours_luajit$suffix" "$n" "${luajit_c[@]}" "$n"
  measure "ours_fetch_luajit$suffix" "$n" env BENCH_MODE=fetch "${luajit_c[@]}" "$n"
done

# Sections 3-4: idle polling and write -> event latency with stream:run defaults.
echo "e2e: idle polling (${BENCH_IDLE_S:-12} s) and latency (${BENCH_LAT_WRITES:-300} writes)" >&2
"$lua" "$here/latency.lua" "$DDB_LOCAL_ENDPOINT" "${BENCH_LAT_WRITES:-300}" "${BENCH_LAT_INTERVAL_MS:-50}" \
  "${BENCH_IDLE_S:-12}" | grep -E '^(IDLE|IDLE_STEADY|LATENCY) ' >>"$results" || echo "e2e: latency run failed" >&2
