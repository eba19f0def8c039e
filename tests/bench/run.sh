#!/bin/sh
# tests/bench/run.sh BUILD [--quick] [--repeat N] [--only facteur|postfix] [--headline] [--keep]
#
# The benchmark behind `make bench` (not a test: it measures, it does not
# judge). It installs what it needs when missing (smtp-source and the
# reference Postfix come with Debian's postfix package, the harness is
# Python 3), then runs tests/bench/bench.py, which drives facteurd and a
# private Postfix instance with the same smtp-source load on loopback ports
# and prints msg/s, CPU per message, the ratio facteur/postfix and
# facteurd's memory with 1000 idle sessions. Run it as root to include
# Postfix (its daemons need root to start, then run as "facteurbench").
set -eu

if [ $# -lt 1 ]; then
	echo "usage: sh tests/bench/run.sh BUILD_DIR [--quick] [--repeat N] [--only facteur|postfix] [--headline] [--keep]" >&2
	exit 2
fi
build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

sh "$top/contrib/install-deps.sh" test

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
exec "$py" "$here/bench.py" "$build" "$@"
