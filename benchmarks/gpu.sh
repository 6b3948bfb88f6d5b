#!/usr/bin/env bash
# One prepared command for a GPU machine: prints the same tables as on the CPU.
#   bash benchmarks/gpu.sh            (from the repository root; JSON lands in benchmarks/ or $OUT)
# The machine needs jax with CUDA, sympy, xarray; netCDF4 and cftime may come as wheels in .whl/
# (see the device tool's README), installed here into /tmp/site without touching the image.
set -euo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
dest=${OUT:-benchmarks}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
python3 benchmarks/throughput.py --max-points 1e9 --numerics fast --json "$dest/throughput_fast.json"
python3 benchmarks/throughput.py --max-points 1e9 --numerics exact --json "$dest/throughput_exact.json"
python3 benchmarks/query.py --points 1e9 --json "$dest/query.json"
python3 benchmarks/end_to_end.py --gigabytes 4 --max-device-mem 8GiB --json "$dest/end_to_end.json"
# memory: the measurement protocol of tests/data/measured_memory_pytorch_h200.json on this GPU (small shapes + real sizes)
python3 benchmarks/measure_memory_gpu.py --big --out "$dest/gpu_measured.json"
