#!/usr/bin/env bash
# Side by side: previous code (/tmp/convssm_old: src + its benchmarks at 99ecb1e) and this branch.
set -u
NEW=/work/wt/i14; OLD=/tmp/convssm_old; PY=/work/main/.venv/bin/python; R=/tmp/side
mkdir -p $R
run() { # label dir script args...
  local label=$1 dir=$2; shift 2
  echo "== $label $(uptime)"; (cd $dir && PYTHONPATH=$dir/src $PY "$@" 2>&1 | tail -n 25)
}
for r in 1 2; do
  for side in old new; do
    d=$OLD; [ $side = new ] && d=$NEW
    run "$side scan r$r" $d benchmarks/bench_scan.py --N 512 --small-n 64 --repeats 3 --small-repeats 1 --out $R/${side}_scan_$r.json
  done
  for side in old new; do
    d=$OLD; [ $side = new ] && d=$NEW
    run "$side layer r$r" $d benchmarks/bench_layer.py --repeats 3 --length 32 --out $R/${side}_layer_$r.json
  done
  for side in old new; do
    d=$OLD; [ $side = new ] && d=$NEW
    run "$side generation r$r" $d benchmarks/bench_generation.py --context 50 --last 300 --generated 200 --rounds 3 --out $R/${side}_gen_$r.json --plot $R/${side}_gen_$r.png
  done
done
echo "== end $(uptime)"
