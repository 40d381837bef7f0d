#!/bin/sh
# Starts the example in the foreground, from any directory:
#
#   DS_TABLE=mytable AWS_REGION=... examples/openresty/run.sh [nginx options]
#
#   DS_LISTEN    address:port to serve on (default 127.0.0.1:8080)
#   DS_RESOLVER  DNS servers for the AWS host names (default: the nameservers
#                of /etc/resolv.conf)
#   DS_PREFIX    where logs/ and tmp/ go (default: this folder)
#   DS_BUILD     the LuaJIT build of the C core (default: build-luajit/ of the
#                repository, made by `make LUA=luajit`)
#   NGINX        the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#
# nginx cannot read the environment in `listen` or `resolver`: this writes
# conf/nginx.conf with them (and absolute paths) to $DS_PREFIX/tmp/nginx.conf.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${DS_PREFIX:-$here}
listen=${DS_LISTEN:-127.0.0.1:8080}
build=${DS_BUILD:-$root/build-luajit}
resolver=${DS_RESOLVER:-$(awk '$1 == "nameserver" { printf "%s%s", sep, ($2 ~ /:/ ? "[" $2 "]" : $2); sep = " " }' \
  /etc/resolv.conf 2>/dev/null || true)}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# Only what an address list can hold: these go into the configuration file.
case $listen in *[!0-9A-Za-z.:\[\]-]* | '') echo "run.sh: DS_LISTEN is not an address:port: $listen" >&2; exit 2 ;; esac
case $resolver in *[!0-9A-Za-z.:\[\]\ -]*) echo "run.sh: DS_RESOLVER is not a list of addresses: $resolver" >&2; exit 2 ;; esac
case $prefix$root$build in *[!0-9A-Za-z._/+-]*) echo "run.sh: paths may only hold letters, digits and ._/+-" >&2; exit 2 ;; esac
[ -n "$resolver" ] || echo "run.sh: no DS_RESOLVER and no nameserver in /etc/resolv.conf: AWS host names will not resolve" >&2

mkdir -p "$prefix/logs" "$prefix/tmp"
resolver_line="# no resolver"
[ -z "$resolver" ] || resolver_line="resolver $resolver valid=30s ipv6=off;"
sed -e "s|^\( *\)listen .*# DS_LISTEN with run\.sh\$|\1listen $listen reuseport;|" \
    -e "s|^\( *\)# resolver .*# DS_RESOLVER with run\.sh\$|\1$resolver_line|" \
    -e "s|\$prefix/\.\./\.\./build-luajit/|$build/|g" \
    -e "s|\$prefix/\.\./\.\./|$root/|g" \
    -e "s|\$prefix/lua/|$here/lua/|g" \
    "$here/conf/nginx.conf" >"$prefix/tmp/nginx.conf"
exec "$nginx" -p "$prefix/" -c "$prefix/tmp/nginx.conf" -e "$prefix/logs/error.log" "$@"
