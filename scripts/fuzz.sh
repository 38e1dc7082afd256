#!/usr/bin/env bash
# Runs every Go fuzz test of the module for FUZZTIME each (default 5s), one
# after the other (go test fuzzes one target at a time). `make test` runs
# it short; `make fuzz` runs it long. A crasher the fuzzer finds is written
# to the package's testdata/fuzz/ and fails the run: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
# Minimising new corpus entries is for long runs; a short one fuzzes.
minimize=${FUZZMINIMIZETIME:-2s}
status=0
while IFS=: read -r file func; do
	pkg=./$(dirname "$file")
	echo "fuzz: $func in $pkg for $fuzztime"
	if ! go test -run '^$' -fuzz "^${func}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg"; then
		status=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's/^\.\///; s/func //')
exit $status
