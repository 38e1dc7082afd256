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
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-call
# (go.dev/issue/75804, fixed in Go 1.27): no input is written and nothing
# was found. Such a run is tried again, twice at most; a real finding
# always writes "Failing input written to testdata/fuzz/...".
fuzz_one() {
	local pkg=$1 func=$2 out
	for attempt in 1 2 3; do
		if out=$(go test -run '^$' -fuzz "^${func}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1); then
			printf '%s\n' "$out"
			return 0
		fi
		printf '%s\n' "$out"
		if grep -q 'Failing input written' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
			return 1
		fi
		echo "fuzz: $func stopped at its deadline without a finding (go.dev/issue/75804); running it again ($attempt)"
	done
	return 1
}
status=0
while IFS=: read -r file func; do
	pkg=./$(dirname "$file")
	echo "fuzz: $func in $pkg for $fuzztime"
	if ! fuzz_one "$pkg" "$func"; then
		status=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's/^\.\///; s/func //')
exit $status
