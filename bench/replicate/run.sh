#!/usr/bin/env bash
# Replication throughput (section 7 of make bench); runs inside
# scripts/with-ddb-local (needs DDB_LOCAL_ENDPOINT), after `npm ci` here.
#   bench/replicate/run.sh ITEMS CHANGES RESULTS_FILE
# In one DynamoDB Local: SRC gets ITEMS items of about 1 KB; it is copied by
# the Node baseline (copy.js: Scan + BatchWrite as AWS documents it) and by
# `dynamodb-stream replicate --until-caught-up` (1 and 4 segments), each into
# its own empty table; then, every copier stopped, CHANGES changes are written
# to SRC and drained by the Node follower (follow.js) and by `replicate` resumed
# from its checkpoint. Each process runs under /usr/bin/time; the CPU time
# DynamoDB Local spent meanwhile is read from its /proc entry. Every copy is
# checked: the target holds as many items as SRC (and equals it, by
# `dynamodb-stream verify`, when the command has it). Appends to RESULTS_FILE
#   META repl_items <n>, META repl_item_bytes <b>, META repl_changes <m>
#   REPL <name> <items or changes> <user s> <sys s> <peak RSS KiB> <wall s> <DynamoDB Local CPU s>
set -euo pipefail
items=${1:?items}
changes=${2:?changes}
results=${3:?results file}
: "${DDB_LOCAL_ENDPOINT:?run me under scripts/with-ddb-local}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lua=${LUA:-lua5.4}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-replicate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
endpoint=$DDB_LOCAL_ENDPOINT
say() { echo "replicate: $*" >&2; }

# DynamoDB Local's process: the java listening on the endpoint's port.
port=${endpoint##*:}
ddb_pid=
for p in /proc/[0-9]*; do
  if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "DynamoDBLocal.jar .*-port $port "; then ddb_pid=${p#/proc/}; fi
done
ticks=$(getconf CLK_TCK)
ddb_cpu() {  # its user+sys seconds so far, or - when it was not found
  if [ -n "$ddb_pid" ] && [ -r "/proc/$ddb_pid/stat" ]; then
    # Fields 14 and 15 (utime, stime) counted after the ") " that ends the command name.
    sed 's/^.*) //' "/proc/$ddb_pid/stat" | awk -v t="$ticks" '{ printf "%.2f", ($12 + $13) / t }'
  else
    echo -
  fi
}

# Our command, as a user runs it, with DynamoDB Local's credentials.
ours=(env AWS_ACCESS_KEY_ID="${BENCH_ACCESS_KEY_ID:-benchkey}"
      AWS_SECRET_ACCESS_KEY="${BENCH_SECRET_ACCESS_KEY:-benchsecret}"
      "$lua" "$root/bin/dynamodb-stream")
global=(--endpoint-url "$endpoint" --region us-east-1)
node=(env NODE_NO_WARNINGS=1 node)

count() { "$lua" "$here/source.lua" count "$endpoint" "$1" | awk '{ print $2 }'; }

# name N target want command...: runs the command under /usr/bin/time, checks
# that the target then holds want items, and appends the REPL line (N = the
# items or changes it copied).
measure() {
  local name=$1 n=$2 target=$3 want=$4; shift 4
  say "$name: $n into $target"
  local before after got ddb=-
  before=$(ddb_cpu)
  if ! /usr/bin/time -f "%U %S %M %e" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"; then
    say "$name failed:"; tail -20 "$tmp/out" "$tmp/err" >&2
    return 1
  fi
  after=$(ddb_cpu)
  got=$(count "$target")
  if [ "$got" != "$want" ]; then
    say "$name: $target holds $got items, SRC $want"; tail -20 "$tmp/out" "$tmp/err" >&2
    return 1
  fi
  [ "$before" != - ] && [ "$after" != - ] && ddb=$(echo "$after - $before" | bc | xargs printf "%.2f")
  read -r user sys rss wall <"$tmp/time"
  echo "REPL $name $n $user $sys $rss $wall $ddb" >>"$results"
}

# Our rows need the replicate command (skipped, with a message, without it).
has_replicate=0
"${ours[@]}" replicate --help >/dev/null 2>&1 && has_replicate=1
[ "$has_replicate" = 1 ] || say "bin/dynamodb-stream has no replicate command: our rows are skipped"

# Equal tables, by `dynamodb-stream verify` when the command has it.
has_verify=0
"${ours[@]}" verify --help >/dev/null 2>&1 && has_verify=1
verify() {
  [ "$has_verify" = 1 ] || return 0
  if ! "${ours[@]}" verify src "$1" "${global[@]}" >"$tmp/verify" 2>&1; then
    say "dynamodb-stream verify src $1: the tables differ"; head -20 "$tmp/verify" >&2
    return 1
  fi
}

say "SRC of $items items, and the empty targets"
"$lua" "$here/source.lua" create "$endpoint" src "$items" node1 node4 node4x8 ours1 ours4 >"$tmp/create"
{
  echo "META repl_items $items"
  sed -n 's/^ITEM_BYTES=/META repl_item_bytes /p' "$tmp/create"
  echo "META repl_changes $changes"
  echo "META repl_check $([ "$has_verify" = 1 ] && echo verify || echo count)"
} >>"$results"

# Bootstrap: the same table copied five ways, one after the other.
measure node_copy_1 "$items" node1 "$items" "${node[@]}" "$here/copy.js" "$endpoint" src node1 1 1
measure node_copy_4 "$items" node4 "$items" "${node[@]}" "$here/copy.js" "$endpoint" src node4 4 1
measure node_copy_4x8 "$items" node4x8 "$items" "${node[@]}" "$here/copy.js" "$endpoint" src node4x8 4 8
if [ "$has_replicate" = 1 ]; then
  measure ours_bootstrap_1 "$items" ours1 "$items" \
    "${ours[@]}" replicate src ours1 --checkpoint "$tmp/ours1.json" --segments 1 --until-caught-up "${global[@]}"
  measure ours_bootstrap_4 "$items" ours4 "$items" \
    "${ours[@]}" replicate src ours4 --checkpoint "$tmp/ours4.json" --segments 4 --until-caught-up "${global[@]}"
fi
for t in node1 node4 node4x8; do verify "$t"; done
[ "$has_replicate" = 0 ] || for t in ours1 ours4; do verify "$t"; done

# Follow: every copier stopped, the changes written, then drained.
"${node[@]}" "$here/follow.js" mark "$endpoint" src "$tmp/node-follow.json"
say "writing $changes changes to SRC"
"$lua" "$here/source.lua" change "$endpoint" src "$items" "$changes" >/dev/null
final=$(count src)
measure node_follow "$changes" node1 "$final" \
  "${node[@]}" "$here/follow.js" apply "$endpoint" "$tmp/node-follow.json" node1 "$changes" 1
if [ "$has_replicate" = 1 ]; then
  measure ours_follow "$changes" ours1 "$final" \
    "${ours[@]}" replicate src ours1 --checkpoint "$tmp/ours1.json" --until-caught-up "${global[@]}"
  verify ours1
fi
verify node1
say "done"
