#!/usr/bin/env bash
# make bench: builds what is needed, then measures decode throughput and the
# end-to-end consumer cost against the baselines, and prints one table.
#
# Environment:
#   BENCH_SEED     seed of the generated pages (default 42)
#   BENCH_ROUNDS   rounds of the decode benchmarks, interleaved (default 5)
#   BENCH_RUNS     timed runs per decoder per round, median kept (default 5)
#   BENCH_RUN_SEC  minimum seconds per timed run (default 0.25)
#   BENCH_CHANGES  changes pre-written for the end-to-end part (default 20000)
#   BENCH_SKIP_E2E=1  decode only (no DynamoDB Local)
#   BENCH_PAGES    the pages of section 1, e.g. "orders keys_only" (default: every gen_page.lua --list)
#   BENCH_ONLY_DECODE=1  section 1 only, its table printed, bench/README.md left alone (quick checks)
#   BENCH_IDLE_S (12), BENCH_LAT_WRITES (300), BENCH_LAT_INTERVAL_MS (50): sections 3-4
#   BENCH_POLL_ROUNDS   rounds of section 5 (poll rounds over 1/16/64 shards; default 9)
#   BENCH_MEM_RECORDS   records of the memory run, section 6 (default 200000)
#   BENCH_VG_RECORDS    records of the valgrind run, section 6 (default 5000)
#   BENCH_REPL_ITEMS (20000), BENCH_REPL_CHANGES (10000), BENCH_REPL_ROUNDS (3): section 7, replication
#   BENCH_SKIP_REPLICATE=1  no section 7 (BENCH_SKIP_E2E=1 skips it too)
#   LUA            Lua 5.4 interpreter (default lua5.4)
# Output: the table on stdout (also bench/out/table.txt, and in bench/README.md
# between its <!-- bench:table --> lines); raw results in bench/out/results.txt.
# Progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seed=${BENCH_SEED:-42}
rounds=${BENCH_ROUNDS:-5}
runs=${BENCH_RUNS:-5}
run_sec=${BENCH_RUN_SEC:-0.25}
changes=${BENCH_CHANGES:-20000}
export LUA=${LUA:-lua5.4}
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
export LUA_CPATH="$root/build/?.so;;"
out=bench/out
mkdir -p "$out"
results=$out/results.txt
: >"$results"

say() { echo "bench: $*" >&2; }

# ---- prerequisites and builds
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/time ] || missing+=(time)
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v luajit >/dev/null || missing+=(luajit2)
[ -f /usr/include/luajit-2.1/lua.h ] || missing+=(libluajit2-5.1-dev)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v bc >/dev/null || missing+=(bc)
[ -f /usr/include/cjson/cJSON.h ] || missing+=(libcjson-dev)
"$LUA" -e 'require "cjson"' 2>/dev/null || missing+=(lua-cjson)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
say "building the module (Lua 5.4 and LuaJIT) and bench/out/cjson_floor"
make -s all luajit-build >&2
make -s -C bench >&2
for d in bench/node bench/e2e bench/replicate; do
  if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    say "npm ci in $d"
    npm ci --prefix "$d" --no-audit --no-fund --loglevel=error >&2
  fi
done

{
  echo "META date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "META machine $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "META load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "META node $(node --version)"
  echo "META seed $seed"
  echo "META runs $runs"
  echo "META lat_interval ${BENCH_LAT_INTERVAL_MS:-50}"
} >>"$results"

# ---- 1. decode
# Every page of gen_page.lua against Node, ours and our values alone, each
# under Lua 5.4 and LuaJIT; on the "orders" page also lua-cjson, the cJSON floor and the
# filtered decode (ours, LuaJIT, Node: 1c).
# Interleaved rounds, so that load from elsewhere on the machine hits every
# decoder alike; report.lua takes the median round of each, and each ratio
# within a round (the median of the rounds' ratios).
pages=${BENCH_PAGES:-$("$LUA" bench/gen_page.lua --list)}
for page in $pages; do
  "$LUA" bench/gen_page.lua --seed "$seed" --page "$page" "$out/page-$page-$seed.json" >&2
done
decode_rows() {  # page command...: the command's RESULT and KEPT lines, tagged with the page
  local page=$1; shift
  "$@" | sed "s/^\(RESULT\|KEPT\) .*/& $page/" >>"$results"
}
for round in $(seq 1 "$rounds"); do
  for page in $pages; do
    file=$out/page-$page-$seed.json
    say "decode round $round/$rounds, page $page: ours and our values alone (Lua 5.4, LuaJIT), Node"
    decode_rows "$page" "$LUA" bench/decode/decode.lua ours "$file" "$runs" "$run_sec"
    decode_rows "$page" "$LUA" bench/decode/decode.lua lua_build "$file" "$runs" "$run_sec"
    decode_rows "$page" env LUA_CPATH="$root/build-luajit/?.so;;" luajit bench/decode/decode.lua ours "$file" \
      "$runs" "$run_sec"
    decode_rows "$page" env LUA_CPATH="$root/build-luajit/?.so;;" luajit bench/decode/decode.lua lua_build "$file" \
      "$runs" "$run_sec"
    decode_rows "$page" node bench/node/decode.js "$file" "$runs" "$run_sec"
    if [ "$page" = orders ]; then
      say "decode round $round/$rounds, page orders: lua-cjson, cJSON floor, filtered (ours, LuaJIT, Node)"
      decode_rows "$page" "$LUA" bench/decode/decode.lua cjson "$file" "$runs" "$run_sec"
      decode_rows "$page" "$out/cjson_floor" "$file" "$runs" "$run_sec" 2>/dev/null
      decode_rows "$page" "$LUA" bench/decode/decode.lua ours_filtered "$file" "$runs" "$run_sec"
      decode_rows "$page" env LUA_CPATH="$root/build-luajit/?.so;;" luajit bench/decode/decode.lua ours_filtered \
        "$file" "$runs" "$run_sec"
      decode_rows "$page" node bench/node/decode.js "$file" "$runs" "$run_sec" filtered
    fi
  done
done
print_table() {
  echo "META load_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
  "$LUA" bench/report.lua "$results" | tee "$out/table.txt"
}
if [ "${BENCH_ONLY_DECODE:-0}" = 1 ]; then
  print_table
  exit 0
fi

# ---- 5. many shards: a poll round over 1/16/64 shards (fake endpoint, 20 ms
# per GetRecords): bare GetRecords serially and in parallel, then the consumer.
poll_rounds=${BENCH_POLL_ROUNDS:-9}
echo "META poll_rounds $poll_rounds" >>"$results"
echo "META poll_latency_ms 20" >>"$results"
say "poll rounds over 1/16/64 shards: GetRecords serially and in parallel ($poll_rounds rounds)"
"$LUA" bench/poll_round.lua --rounds "$poll_rounds" --raw | grep '^POLL ' >>"$results"
say "poll rounds over 1/16/64 shards: stream:fetch_stream_records()"
"$LUA" bench/consumer_round.lua --rounds "$poll_rounds" --raw | grep '^CONSUMER ' >>"$results"

# ---- 6. memory over 200,000 records, and valgrind
bench/mem/run.sh "$root/$results"

# ---- 2. end to end
if [ "${BENCH_SKIP_E2E:-0}" != 1 ]; then
  scripts/with-ddb-local bench/e2e/run.sh "$changes" "$root/$results" >&2
fi

# ---- 7. replication throughput: bootstrap and follow, ours against Node
if [ "${BENCH_SKIP_REPLICATE:-0}" != 1 ] && [ "${BENCH_SKIP_E2E:-0}" != 1 ]; then
  scripts/with-ddb-local bench/replicate/run.sh "${BENCH_REPL_ITEMS:-20000}" "${BENCH_REPL_CHANGES:-10000}" \
    "${BENCH_REPL_ROUNDS:-3}" "$root/$results" >&2
fi

print_table
# The table in bench/README.md is this run's, never one pasted by hand.
commit=$(git rev-parse --short HEAD 2>/dev/null || true)
if [ -n "$commit" ] && [ -n "$(git status --porcelain --untracked-files=no -- . ':!bench/README.md' 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
"$LUA" bench/put_table.lua "$out/table.txt" bench/README.md "$commit"
say "table written into bench/README.md"
