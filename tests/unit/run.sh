#!/bin/sh
# Runs every cmocka unit test binary given as arguments, then prints one
# aggregate line "unit: N passed, N failed". Exits non-zero if any failed.
pass=0
fail=0
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	# A binary may run several groups: add up every summary line.
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	pass=$((pass + ${p:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	fail=$((fail + ${f:-0}))
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
