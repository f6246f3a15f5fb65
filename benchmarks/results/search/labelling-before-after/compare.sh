#!/bin/bash
# File labelling before and after a change: the first ROWS (default 1,000) SST-2 test sentences
# labelled by the shipped generalist (`emotune predict --input`) from a worktree of BEFORE and of
# AFTER, four rounds interleaved (the order swapped after two), then the outputs compared.
#
#   bash benchmarks/results/search/labelling-before-after/compare.sh BEFORE AFTER   # from the repository root
set -euo pipefail
before=$1 after=$2 rows=${ROWS:-1000}
python=$(pwd)/.venv/bin/python
work=$(mktemp -d)
trap 'git worktree remove --force "$work/before"; git worktree remove --force "$work/after"; rm -rf "$work"' EXIT
git worktree add -q -f "$work/before" "$before"
git worktree add -q -f "$work/after" "$after"
head -n "$rows" ../shared/datasets/sst/stsa.binary.test | cut -d' ' -f2- > "$work/sst.txt"  # head first: pipefail
for round in 1 2 3 4; do
  if [ "$round" -le 2 ]; then order="after before"; else order="before after"; fi
  for side in $order; do
    s=$(date +%s.%N)
    PYTHONPATH="$work/$side/src" "$python" -m emotune.cli predict --input "$work/sst.txt" --output "$work/$side-$round.jsonl" > /dev/null 2>&1
    echo "$side round $round: $(echo "$(date +%s.%N) - $s" | bc) s, $(wc -l < "$work/$side-$round.jsonl") rows"
  done
done
"$python" - "$work/before-4.jsonl" "$work/after-4.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(line) for line in open(path)] for path in sys.argv[1:])
same = sum(x["label"] == y["label"] for x, y in zip(a, b))
diff = max(abs(x["scores"][k] - y["scores"][k]) for x, y in zip(a, b) for k in x["scores"])
print("same labels:", same, "of", len(a), "max prob diff:", diff)
PY
