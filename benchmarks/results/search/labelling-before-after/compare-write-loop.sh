#!/bin/bash
# Labelling 1,000 SST-2 test sentences with the shipped generalist: before (e97cbf1) vs after
# (853ef56) the write loop moved into _write_blocks; four rounds, the order swapped after two.
cd /tmp/u
for round in 1 2 3 4; do
  if [ "$round" -le 2 ]; then order="main old"; else order="old main"; fi
  for side in $order; do
    rm -f lab-$side.jsonl*
    s=$(date +%s.%N)
    PYTHONPATH=/work/$side/src /work/main/.venv/bin/python -m emotune.cli predict --input sst1000.txt --output lab-$side.jsonl > /dev/null 2>&1
    e=$(date +%s.%N)
    echo "$side round $round: $(echo "$e - $s" | bc) s, $(wc -l < lab-$side.jsonl) rows"
  done
done
python3 - <<'PY'
import json
a=[json.loads(l) for l in open('/tmp/u/lab-old.jsonl')]; b=[json.loads(l) for l in open('/tmp/u/lab-main.jsonl')]
print("same labels:", sum(x['label']==y['label'] for x,y in zip(a,b)), "of", len(a), "max prob diff:", max(abs(x['scores'][k]-y['scores'][k]) for x,y in zip(a,b) for k in x['scores']))
PY
