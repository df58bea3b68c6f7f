#!/bin/sh
# Builds the timing programs against a build tree's static libraries.
# Usage: build.sh SRC_ROOT BUILD_DIR OUT_DIR [extra g++ flags]
set -e
root=$1; build=$2; out=$3; shift 3
mkdir -p "$out"
libs="$build/src/engine/libquanta_engine.a $build/src/models/libquanta_models.a \
  $build/src/tokenizer/libquanta_tokenizer.a $build/src/kv/libquanta_kv.a \
  $build/src/ops/libquanta_ops.a $build/src/gguf/libquanta_gguf.a \
  $build/src/kernels/libquanta_kernels.a $build/src/quant/libquanta_quant.a \
  $build/src/core/libquanta_core.a"
here=$(dirname "$0")
g++ -std=c++20 -O3 -DNDEBUG -I"$root/src" "$@" "$here/decode_timing.cc" $libs -lpthread \
  -o "$out/decode_timing"
if [ -z "$*" ]; then
  g++ -std=c++20 -O3 -DNDEBUG -I"$root/src" "$here/attention_micro.cc" $libs -lpthread \
    -o "$out/attention_micro"
fi
