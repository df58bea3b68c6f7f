// Fitting a quantized KV cache's key and value transform (kv::KeyTransform) from the queries,
// keys and values a model computes for a short built-in English text (one pass with an F32
// cache) and its output projections.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_transform.h"
#include "models/model.h"
#include "quant/types.h"

namespace quanta::models {

// Tokens of the calibration text, at most `max_tokens` (BOS first when the vocabulary adds
// one); empty when the model's file has no usable tokenizer.
std::vector<int32_t> kv_calibration_tokens(const Model& model, int32_t max_tokens);

// Runs the calibration tokens through `model` (a temporary context with an F32 cache on
// `pool`) and fits the transform of `mode` to every layer's queries, keys and values: query
// heads weighted by how much their score noise moves the attention output through Wo, value
// errors measured through Wo weighted by how concentrated each head's attention is; keys'
// matrix-mean exponent kShapedKeyMeanPower for a Q4_0 cache (`kv_type`; it rounds keys under
// the query metric), else kKeyMeanPower. The identity when `mode` is kNone or there are no
// calibration tokens. Deterministic: the same model, mode and type always give the same
// transform.
kv::KeyTransform calibrate_key_transform(const Model& model, kv::KeyTransformMode mode,
                                         ThreadPool& pool, GgmlType kv_type = GgmlType::Q8_0);

}  // namespace quanta::models
