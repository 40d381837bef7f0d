#!/usr/bin/env bash
# End-to-end benchmark; runs inside scripts/with-ddb-local (needs DDB_LOCAL_ENDPOINT).
#   bench/e2e/run.sh CHANGES RESULTS_FILE
# Pre-writes CHANGES changes, then has each consumer read all of them from
# TRIM_HORIZON under /usr/bin/time; appends to RESULTS_FILE lines
#   E2E <name> <user s> <sys s> <peak RSS KiB> <wall s> <events> <polls>
set -euo pipefail
changes=${1:?changes}
results=${2:?results file}
: "${DDB_LOCAL_ENDPOINT:?run me under scripts/with-ddb-local}"
here=$(cd "$(dirname "$0")" && pwd)
lua=${LUA:-lua5.4}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "e2e: pre-writing $changes changes into DynamoDB Local ($DDB_LOCAL_ENDPOINT)" >&2
"$lua" "$here/prewrite.lua" "$DDB_LOCAL_ENDPOINT" bench_e2e "$changes" >"$tmp/prewrite"
arn=$(sed -n 's/^STREAM_ARN=//p' "$tmp/prewrite")
n=$(sed -n 's/^CHANGES=//p' "$tmp/prewrite")

measure() {  # name command...
  local name=$1; shift
  echo "e2e: $name consuming $n changes" >&2
  /usr/bin/time -f "%U %S %M %e" -o "$tmp/time" "$@" >"$tmp/out"
  local events polls
  events=$(awk '/^EVENTS/ {print $2}' "$tmp/out")
  polls=$(awk '/^EVENTS/ {print $4}' "$tmp/out")
  if [ "${events:-0}" -lt "$n" ]; then
    echo "e2e: $name saw ${events:-0} of $n events" >&2
    cat "$tmp/out" >&2
    return 1
  fi
  read -r user sys rss wall <"$tmp/time"
  echo "E2E $name $user $sys $rss $wall $events $polls" >>"$results"
}

measure node_dynamodb_stream env NODE_NO_WARNINGS=1 node "$here/node_consumer.js" "$DDB_LOCAL_ENDPOINT" "$arn" "$n"
measure ours "$lua" "$here/lua_consumer.lua" "$DDB_LOCAL_ENDPOINT" "$arn" "$n"
