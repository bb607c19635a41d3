#!/usr/bin/env bash
# bench-baseline.sh: the scoring benchmarks of this tree against those of a baseline commit, run in
# alternating pairs on this machine, reported as ratios (now / baseline) per pair.
#
#   deploy/local/bench-baseline.sh [BASE] [PAIRS]
#
# BASE defaults to 94cb452, the build whose figures issue #10's speed targets were written from
# (README, "Scoring vs decoding, before issue #10": DecodeEvent 2.2 µs, Process 4.4–4.8 µs). Those
# figures were taken on a faster machine than this project's 2-core one, so an absolute target
# ("Process ≤ 3 µs") means nothing here; the target as a ratio to that build does (3 / 4.6 ≈ 0.65×),
# and this script measures that ratio. PAIRS (default 6) is how many baseline/now pairs run; the
# order inside a pair alternates so that a machine growing busier favours neither side.
#
# Only benchmarks both builds have are compared (by name); ns/op is wall time per operation (the
# baseline's benchmarks do not report CPU time). Needs the git history of BASE (not a shallow clone)
# and Go; no services. The machine should be quiet: other work inflates both sides, the ratios less.
set -euo pipefail

base=${1:-94cb452}
pairs=${2:-6}
benchs='DecodeEvent$|Process$|Check$|ProcessBurst$|ProcessHotKey$'
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git -C "$root" rev-parse --verify --quiet "$base^{commit}" >/dev/null ||
	{ echo "bench-baseline: commit $base is not in this clone's history (a shallow clone?): git fetch --unshallow" >&2; exit 1; }
git -C "$root" worktree add --detach --quiet "$work/base" "$base"
echo "bench-baseline: building the scoring benchmarks of $base and of this tree" >&2
(cd "$work/base" && go test -c -o "$work/base.test" ./scoring)
(cd "$root" && go test -c -o "$work/now.test" ./scoring)

run() { # run SIDE PAIR: one run of the benchmarks, each line tagged with side and pair
	(cd "$root/scoring" && "$work/$1.test" -test.run '^$' -test.bench "$benchs" -test.benchmem 2>&1) |
		awk -v side="$1" -v pair="$2" '/^Benchmark/ { n=$1; sub(/^Benchmark/, "", n); sub(/-[0-9]+$/, "", n); print side, pair, n, $3 }'
}
for i in $(seq 1 "$pairs"); do
	echo "bench-baseline: pair $i of $pairs (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	if ((i % 2)); then run base "$i"; run now "$i"; else run now "$i"; run base "$i"; fi
done >"$work/runs"

echo "scoring benchmarks, this tree against $base, $pairs alternating pairs on $(nproc) cores (ns/op, wall):"
printf '%-15s %-13s %-13s %-22s %s\n' benchmark baseline now 'now/baseline (median, range)' 'issue #10 target'
awk '
	{ v[$1, $2, $3] = $4; names[$3] = 1; pairs[$2] = 1 }
	END {
		target["DecodeEvent"] = "<= 0.45x (1 us of 2.2)"
		target["Process"] = "<= 0.65x (3 us of 4.4-4.8)"
		for (n in names) {
			k = 0; blo = nlo = 1e18; bhi = nhi = 0
			for (p in pairs) {
				if (!((("base", p, n) in v) && (("now", p, n) in v))) continue
				b = v["base", p, n]; c = v["now", p, n]; r[++k] = c / b
				blo = b < blo ? b : blo; bhi = b > bhi ? b : bhi
				nlo = c < nlo ? c : nlo; nhi = c > nhi ? c : nhi
			}
			if (k == 0) continue
			for (i = 2; i <= k; i++) for (j = i; j > 1 && r[j] < r[j-1]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
			med = k % 2 ? r[(k+1)/2] : (r[k/2] + r[k/2+1]) / 2
			printf "%-15s %-13s %-13s %.2fx (%.2f-%.2f)%s %s\n", n, blo "-" bhi, nlo "-" nhi, med, r[1], r[k], "    ", (n in target ? target[n] : "")
		}
	}' "$work/runs" | sort
