#!/usr/bin/env bash
# Replication throughput (section 7 of make bench); runs inside
# scripts/with-ddb-local (needs DDB_LOCAL_ENDPOINT), after `npm ci` here.
#   bench/replicate/run.sh ITEMS CHANGES ROUNDS RESULTS_FILE
# In one DynamoDB Local: SRC gets ITEMS items of about 1 KB. Bootstrap: in each
# of ROUNDS rounds, SRC is copied into a fresh empty table by each copier in
# turn (the order turns by one every round): the Node baseline (copy.js: Scan +
# BatchWrite as AWS documents it; 1 segment, 4, 4 with 8 writes in flight) and
# `dynamodb-stream replicate --until-caught-up` (1 and 4 segments). Follow: in
# each round, every copier stopped, CHANGES changes are written to SRC, then
# drained by the Node follower (follow.js) and by `replicate` resumed from its
# checkpoint, each into its copy of SRC kept from the last bootstrap round.
# An unmeasured copy by each side first warms DynamoDB Local's JVM up (the first
# copy took 2-3x as long as the next ones). Each copier runs under
# /usr/bin/time; the CPU time DynamoDB Local spent meanwhile is read from its
# /proc entry. Every target is checked to hold SRC's item count after each run,
# and to equal SRC (`dynamodb-stream verify`, when the command has it) in the
# last round and at the end.
# Appends to RESULTS_FILE
#   META repl_items <n>, repl_item_bytes <b>, repl_changes <m>, repl_rounds <r>, repl_check verify|count
#   REPL <name> <items or changes> <user s> <sys s> <peak RSS KiB> <wall s> <DynamoDB Local CPU s | ->
# (one REPL line per copier and round).
set -euo pipefail
items=${1:?items}
changes=${2:?changes}
rounds=${3:?rounds}
results=${4:?results file}
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
[ -n "$ddb_pid" ] || say "DynamoDB Local's process not found: its CPU time is not shown"
ticks=$(getconf CLK_TCK)
ddb_cpu() {  # its user+sys seconds so far, or - when it was not found
  if [ -n "$ddb_pid" ] && [ -r "/proc/$ddb_pid/stat" ]; then
    # utime and stime, fields 14 and 15: 12 and 13 after the ") " that ends the command name.
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
tables() { "$lua" "$here/source.lua" "$1" "$endpoint" "${@:2}"; }
count() { tables count "$1" | awk '{ print $2 }'; }

# Our rows need the replicate command (skipped, with a message, without it).
has_replicate=0
"${ours[@]}" replicate --help >/dev/null 2>&1 && has_replicate=1
[ "$has_replicate" = 1 ] || say "bin/dynamodb-stream has no replicate command: our rows are skipped"
has_verify=0
"${ours[@]}" verify --help >/dev/null 2>&1 && has_verify=1

# The command of copier NAME copying SRC into TARGET (checkpoint CHECKPOINT).
copier() {
  local name=$1 target=$2 checkpoint=$3
  case $name in
    node_copy_1) cmd=("${node[@]}" "$here/copy.js" "$endpoint" src "$target" 1 1) ;;
    node_copy_4) cmd=("${node[@]}" "$here/copy.js" "$endpoint" src "$target" 4 1) ;;
    node_copy_4x8) cmd=("${node[@]}" "$here/copy.js" "$endpoint" src "$target" 4 8) ;;
    ours_bootstrap_1 | ours_bootstrap_4)
      cmd=("${ours[@]}" replicate src "$target" --checkpoint "$checkpoint" --segments "${name##*_}"
           --until-caught-up "${global[@]}") ;;
  esac
}

# name N target command...: runs the command under /usr/bin/time, checks that
# the target then holds src_items items (SRC's count), and appends the REPL
# line (N = the items or changes it copied).
measure() {
  local name=$1 n=$2 target=$3; shift 3
  say "$name: $n into $target"
  local before after got ddb=-
  before=$(ddb_cpu)
  if ! /usr/bin/time -f "%U %S %M %e" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"; then
    say "$name failed:"; tail -20 "$tmp/out" "$tmp/err" >&2
    return 1
  fi
  after=$(ddb_cpu)
  got=$(count "$target")
  if [ "$got" != "$src_items" ]; then
    say "$name: $target holds $got items, SRC $src_items"; tail -20 "$tmp/out" "$tmp/err" >&2
    return 1
  fi
  [ "$before" = - ] || [ "$after" = - ] || ddb=$(echo "$after - $before" | bc | xargs printf "%.2f")
  read -r user sys rss wall <"$tmp/time"
  echo "REPL $name $n $user $sys $rss $wall $ddb" >>"$results"
}

verify() {  # TABLE equals SRC
  [ "$has_verify" = 1 ] || return 0
  if ! "${ours[@]}" verify src "$1" "${global[@]}" >"$tmp/verify" 2>&1; then
    say "dynamodb-stream verify src $1: the tables differ"; head -20 "$tmp/verify" >&2
    return 1
  fi
}

say "SRC of $items items"
tables create src "$items" >"$tmp/create"
src_items=$items
{
  echo "META repl_items $items"
  sed -n 's/^ITEM_BYTES=/META repl_item_bytes /p' "$tmp/create"
  echo "META repl_changes $changes"
  echo "META repl_rounds $rounds"
  echo "META repl_check $([ "$has_verify" = 1 ] && echo verify || echo count)"
} >>"$results"

copiers=(node_copy_1 node_copy_4 node_copy_4x8)
[ "$has_replicate" = 0 ] || copiers+=(ours_bootstrap_1 ours_bootstrap_4)

say "warming DynamoDB Local up (unmeasured copies)"
for name in node_copy_4 ours_bootstrap_4; do
  [ "$name" = node_copy_4 ] || [ "$has_replicate" = 1 ] || continue
  tables targets warmup
  copier "$name" warmup "$tmp/warmup.json"
  "${cmd[@]}" >/dev/null 2>"$tmp/err" || { say "warm-up copy $name failed:"; tail -20 "$tmp/err" >&2; exit 1; }
  tables drop warmup
  rm -f "$tmp/warmup.json"
done

# Bootstrap rounds; the last round's node_copy_1 and ours_bootstrap_1 targets are
# kept for the follow rounds (SRC does not change meanwhile).
for round in $(seq 1 "$rounds"); do
  k=${#copiers[@]}
  for j in $(seq 0 $((k - 1))); do
    name=${copiers[$(((j + round - 1) % k))]}
    target=${name}_r$round
    tables targets "$target"
    copier "$name" "$target" "$tmp/$target.json"
    measure "$name" "$items" "$target" "${cmd[@]}"
    [ "$round" != "$rounds" ] || verify "$target"
    case $round/$name in
      "$rounds/node_copy_1" | "$rounds/ours_bootstrap_1") ;;
      *) tables drop "$target" ;;
    esac
  done
done

# Follow rounds: the changes written with every copier stopped, then drained by
# each follower in turn (which goes first alternates).
node_target=node_copy_1_r$rounds ours_target=ours_bootstrap_1_r$rounds
for round in $(seq 1 "$rounds"); do
  "${node[@]}" "$here/follow.js" mark "$endpoint" src "$tmp/node-follow.json"
  say "writing $changes changes to SRC"
  tables change src "$changes"
  src_items=$(count src)
  followers=(node_follow)
  [ "$has_replicate" = 0 ] || { [ $((round % 2)) = 1 ] && followers+=(ours_follow) || followers=(ours_follow node_follow); }
  for name in "${followers[@]}"; do
    if [ "$name" = node_follow ]; then
      measure node_follow "$changes" "$node_target" \
        "${node[@]}" "$here/follow.js" apply "$endpoint" "$tmp/node-follow.json" "$node_target" "$changes" 1
    else
      measure ours_follow "$changes" "$ours_target" \
        "${ours[@]}" replicate src "$ours_target" --checkpoint "$tmp/$ours_target.json" --until-caught-up "${global[@]}"
    fi
  done
done
verify "$node_target"
[ "$has_replicate" = 0 ] || verify "$ours_target"
say "done"
