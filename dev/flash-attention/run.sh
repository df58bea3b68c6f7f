#!/bin/sh
# Before/after timings of attention-heavy decode (see README.md). Builds the timing programs
# against this tree (build-flash) and against a pristine copy of a base commit, writes two
# random-weight models with `quanta synth`, then alternates old and new binaries REPS times.
# Usage: dev/flash-attention/run.sh [BASE_COMMIT] [REPS]   (from the repository root)
set -e
base=${1:-6f8d4ff}
reps=${2:-3}
work=/tmp/quanta-flash-timing
mkdir -p $work/models
if [ ! -d $work/before ]; then
  mkdir -p $work/before
  git archive "$base" | tar -x -C $work/before
  cmake -S $work/before -B $work/before/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DQUANTA_BUILD_TESTS=OFF >/dev/null
  cmake --build $work/before/build --target quanta -j2 >/dev/null
fi
cmake --build build-flash --target quanta -j2 >/dev/null
sh dev/flash-attention/build.sh $work/before $work/before/build $work/old -DQUANTA_NO_KV_TYPE
sh dev/flash-attention/build.sh . build-flash $work/new
q=build-flash/quanta
[ -f $work/models/tiny.gguf ] || $q synth -o $work/models/tiny.gguf --type q8_0
[ -f $work/models/tinyllama.gguf ] ||
  $q synth -o $work/models/tinyllama.gguf --shape tinyllama-1.1b --type q4_0
for i in $(seq $reps); do
  echo "== attention alone, one TinyLlama layer, depth 4096 (process CPU time, 1 thread)"
  $work/new/attention_micro 4096 1 cpu
  echo "== tiny model (4 layers, 4 heads / 2 KV heads, head_dim 32), depth 4096, 2 threads"
  $work/old/decode_timing $work/models/tiny.gguf 4096 200 f32 2 | sed 's/^/before: /'
  $work/new/decode_timing $work/models/tiny.gguf 4096 200 f32 2 | sed 's/^/after:  /'
  $work/new/decode_timing $work/models/tiny.gguf 4096 200 f16 2 | sed 's/^/after:  /'
  echo "== TinyLlama-1.1B shape Q4_0: depth 4096 and depth 1 (the difference is attention)"
  for d in 4096 1; do
    $work/old/decode_timing $work/models/tinyllama.gguf $d 9 f32 2 | sed 's/^/before: /'
    $work/new/decode_timing $work/models/tinyllama.gguf $d 9 f32 2 | sed 's/^/after:  /'
    $work/new/decode_timing $work/models/tinyllama.gguf $d 9 f16 2 | sed 's/^/after:  /'
  done
done
