// Fitting a quantized KV cache's key transform (kv::KeyTransform) from the queries and keys a
// model computes for a short built-in English text, evaluated once with an F32 cache.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_transform.h"
#include "models/model.h"

namespace quanta::models {

// Tokens of the calibration text, at most `max_tokens` (BOS first when the vocabulary adds
// one); empty when the model's file has no usable tokenizer.
std::vector<int32_t> kv_calibration_tokens(const Model& model, int32_t max_tokens);

// Runs the calibration tokens through `model` (a temporary context with an F32 cache on
// `pool`) and fits the transform of `mode` to every layer's queries and stored keys. The identity
// when `mode` is kNone or there are no calibration tokens. Deterministic: the same model and mode
// always give the same transform.
kv::KeyTransform calibrate_key_transform(const Model& model, kv::KeyTransformMode mode,
                                         ThreadPool& pool);

}  // namespace quanta::models
