#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer target (clang, ASan +
# UBSan) linked with the library sources, runs each for $1 seconds on its
# corpus in build-fuzz/corpus/NAME (seeded from tests/fuzz/corpus/NAME/),
# and prints one summary line per target. Exits non-zero if a target fails
# to build or finds a crash (the reproducer is in build-fuzz/artifacts/NAME/).
# Usage: sh tests/fuzz/run.sh SECONDS   (from `make fuzz FUZZ_SECONDS=N`)

secs=${1:-30}
case $secs in
''|*[!0-9]*) echo "usage: $0 SECONDS" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.." || exit 2

CLANG=${CLANG:-clang}
PKGS="libevent libevent_openssl libevent_pthreads openssl libsodium libcares libpcre2-8 libmariadb ldap"
# LMDB (core/kvstore.c): through pkg-config where lmdb.pc exists, as GNUmakefile
if pkg-config --exists lmdb 2>/dev/null; then
	PKGS="$PKGS lmdb"
	LMDB_LIB=""
else
	LMDB_LIB="-llmdb"
fi
OUT=${FUZZ_OUT:-build-fuzz}	# FUZZ_OUT: another directory (parallel runs)
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -D_DEFAULT_SOURCE -pthread -I. $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) $LMDB_LIB -lcrypt -pthread"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "fuzz: $CLANG not found" >&2
	exit 2
fi
mkdir -p "$OUT/obj" || exit 2

# Library objects, compiled once for every target. A header newer than the
# stamp forces a full rebuild (objects do not track their headers here).
stamp=$OUT/obj/.stamp
rebuild_all=0
if [ ! -f "$stamp" ] || [ -n "$(find core backends auth delivery -name '*.h' -newer "$stamp" 2>/dev/null | head -n 1)" ]; then
	rebuild_all=1
fi
objs=""
for src in core/lib/*.c core/*.c backends/*.c auth/*.c delivery/*.c delivery/*/*.c; do
	[ -f "$src" ] || continue
	case $src in
	core/facteurd.c|core/facteur.c|core/sendmail.c) continue ;;
	esac
	obj=$OUT/obj/$(printf '%s' "$src" | sed 's|/|_|g; s|\.c$|.o|')
	if [ "$rebuild_all" = 1 ] || [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
		# shellcheck disable=SC2086
		if ! $CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -c -o "$obj" "$src"; then
			echo "fuzz: cannot compile $src" >&2
			exit 1
		fi
	fi
	objs="$objs $obj"
done
touch "$stamp"
# An archive, as the real build uses: a target pulls in only the objects it
# needs (the CLI commands, for one, need the CLI's main program).
lib=$OUT/libfacteur-fuzz.a
rm -f "$lib"
# shellcheck disable=SC2086
ar rcs "$lib" $objs || exit 1

status=0
summary=""
for target in tests/fuzz/fuzz_*.c; do
	[ -f "$target" ] || continue
	name=$(basename "$target" .c)
	bin=$OUT/$name
	# shellcheck disable=SC2086
	if ! $CLANG $CFLAGS $SAN -fsanitize=fuzzer -o "$bin" "$target" "$lib" $LIBS; then
		summary="$summary
$name: BUILD FAILED"
		status=1
		continue
	fi
	corpus=$OUT/corpus/$name
	artifacts=$OUT/artifacts/$name
	mkdir -p "$corpus" "$artifacts"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		for f in "tests/fuzz/corpus/$name"/*; do
			[ -f "$f" ] && cp "$f" "$corpus/"
		done
	fi
	log=$OUT/$name.log
	echo "fuzz: running $name for ${secs}s (log: $log)"
	"$bin" -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	files=$(find "$corpus" -type f | wc -l | tr -d ' ')
	if [ "$rc" -eq 0 ]; then
		summary="$summary
$name: ok, ${runs:-?} runs, corpus $files files"
	else
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		summary="$summary
$name: FAILED (exit $rc) ${crash:+reproducer $crash}"
		tail -n 40 "$log" >&2
		status=1
	fi
done
if [ -z "$summary" ]; then
	echo "fuzz: no targets in tests/fuzz/" >&2
	exit 1
fi
printf 'fuzz summary:%s\n' "$summary"
exit $status
