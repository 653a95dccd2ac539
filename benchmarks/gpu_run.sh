#!/usr/bin/env bash
# The GPU speed checks in one prepared run: nqs's seconds per step and its split in float64 and
# float32 (benchmarks/speed.py), many chains, the side-by-side against NetKet, and a few steps of the
# 8x8 Hubbard RBM+PP run.  Each part has its own time limit, so a slow part cannot starve the rest.
#
#   OUT=results/ bash benchmarks/gpu_run.sh            # on a machine with a GPU, from the repo root
#   QUICK=1 JAX_PLATFORMS=cpu OUT=/tmp/g bash benchmarks/gpu_run.sh   # a rehearsal of every part on the CPU
#   PARTS=short OUT=results/ bash benchmarks/gpu_run.sh   # the parts that fit 15 minutes of device time (~8.5 min)
#
# Python packages missing there (pydantic, tomli-w; NetKet and its needs) may sit as wheels in .whl/
# (see benchmarks/README.md); they are installed into /tmp/site first.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >"$OUT/pip.log" 2>&1 || echo "wheel install failed (see pip.log)"
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
log=$OUT/gpu_log.txt
part() {  # part SECONDS TITLE COMMAND...
    local limit=$1 title=$2; shift 2
    echo "## $title  ($(date -u +%T), limit ${limit}s)" | tee -a "$log"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | grep -v "^WARNING\|^  warnings.warn\|UserWarning" | tee -a "$log"
    echo "## ($((SECONDS - t0)) s)" | tee -a "$log"
}
part 60 "environment" bash -c 'nvidia-smi -L 2>/dev/null; python3 -c "
import jax, numpy, scipy, optax, pydantic; import nqs
print(\"jax\", jax.__version__, jax.devices(), \"numpy\", numpy.__version__, \"pydantic\", pydantic.__version__)
try:
    import netket; print(\"netket\", netket.__version__)
except Exception as e: print(\"netket unavailable:\", type(e).__name__, e)
"'
if [ -n "${QUICK:-}" ]; then
    S="--sizes 16 --squares 4 --samples 512 --scan-size 16 --repeats 2"; M="--sizes 16 --n-chains 256 --n-samples 1024"
    NK="--systems chain:16 --steps 3"; NK64="--systems chain:16 --steps 3"; H=1
else
    S="--sizes 16 32 64 128 --squares 4 8 --samples 512 2048 8192 --repeats 3"
    M="--sizes 64 128 --squares 8 --n-chains 1024 --n-samples 8192"
    NK="--systems chain:64 chain:128 square:8x8 --steps 10"; NK64="--systems chain:128 --steps 10"; H=4
fi
case "${PARTS:-all}" in
all)
    part 120 "speed float64" python3 benchmarks/speed.py $S --precision float64
    part 110 "speed float32" python3 benchmarks/speed.py $S --precision float32
    part 160 "NetKet side by side, float32" python3 benchmarks/vs_netket.py $NK --accuracy-systems --precision float32
    part 100 "8x8 Hubbard RBM+PP, $H steps" python3 -m nqs.cli run examples/hubbard_8x8.toml --n-steps $H --out "$OUT/h8" --quiet
    part 60 "NetKet side by side, float64" python3 benchmarks/vs_netket.py $NK64 --accuracy-systems --precision float64
    part 50 "many chains, float32" python3 benchmarks/speed.py $M --samples --repeats 3 --precision float32
    ;;
short)  # what a 15-minute device budget allows: nqs's tables and the NetKet rows that were missing
    if [ -n "${QUICK:-}" ]; then S2="--sizes 16 --squares 4 --samples --repeats 2"; NK2="--systems chain:16 --steps 2"
    else S2="--sizes 16 64 128 --squares 8 --samples --repeats 3"; NK2="--systems chain:128 square:8x8 --steps 4"; fi
    part 90 "speed float64" python3 benchmarks/speed.py $S2 --precision float64
    part 180 "NetKet side by side, float32" python3 benchmarks/vs_netket.py $NK2 --accuracy-systems --precision float32
    part 70 "speed float32" python3 benchmarks/speed.py $S2 --precision float32
    part 50 "many chains, float32" python3 benchmarks/speed.py $M --samples --repeats 3 --precision float32
    ;;
esac
[ -f "$OUT/h8/history.csv" ] && cp "$OUT/h8/history.csv" "$OUT/h8_history.csv"
[ -f "$OUT/h8/result.json" ] && cp "$OUT/h8/result.json" "$OUT/h8_result.json"
rm -rf "$OUT/h8"
echo "## done $(date -u +%T)" | tee -a "$log"
