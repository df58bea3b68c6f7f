// Model loading: synthetic models of every supported type load and run; defects in the
// metadata or tensors are rejected with a message naming the key or tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.h"
#include "gguf/writer.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "testlib/expect_error.h"
#include "testlib/shared_data.h"

namespace quanta::models {
namespace {

std::string synth(const std::string& name, SyntheticSpec spec) {
  const std::string path = testlib::temp_dir() + "/" + name + ".gguf";
  write_synthetic_model(spec, path);
  return path;
}

// Copies `src` into a new file, letting `edit_kv` drop (return false) or change metadata and
// `edit_tensor` drop/replace tensors.
struct Edit {
  std::string drop_key;
  std::function<void(gguf::Writer&)> extra;
  std::string drop_tensor;
};

Edit drop_key(const char* key) {
  Edit e;
  e.drop_key = key;
  return e;
}

std::string rewrite(const std::string& src, const Edit& edit, const std::string& name) {
  const gguf::File f = gguf::File::open(src);
  gguf::Writer w;
  for (const auto& kv : f.metadata()) {
    if (kv.key != edit.drop_key) w.set(kv.key, kv.value);
  }
  if (edit.extra) edit.extra(w);
  for (const auto& t : f.tensors()) {
    if (t.name == edit.drop_tensor) continue;
    w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t), t.n_bytes);
  }
  const std::string path = testlib::temp_dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

void expect_load_error(const std::string& path, const std::string& fragment) {
  testlib::expect_error([&] { Model::load(path); }, fragment);
}

TEST(ModelLoad, SyntheticModelsOfEveryTypeLoad) {
  for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_K",
                           "q5_K", "q6_K"}) {
    SyntheticSpec spec;
    spec.n_embd = 256;  // K-quants need widths that are multiples of 256
    spec.n_ff = 512;
    spec.n_layer = 1;
    for (uint32_t c = 0; c < kGgmlTypeCount; ++c) {
      if (is_supported_type(static_cast<GgmlType>(c)) &&
          std::string(type_name(static_cast<GgmlType>(c))) == type) {
        spec.type = static_cast<GgmlType>(c);
      }
    }
    ASSERT_STREQ(type_name(spec.type), type);
    const auto model = Model::load(synth(std::string("load-") + type, spec));
    EXPECT_EQ(model->hparams().n_embd, 256);
    EXPECT_EQ(model->weights().layers[0].wq.type, spec.type);
  }
}

class ModelDefects : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticSpec spec;
    spec.n_embd = 256;  // wide enough for a 256-value Q2_K block
    spec.n_ff = 512;
    base_ = synth("defect-base", spec);
  }
  std::string base_;
};

TEST_F(ModelDefects, MissingRequiredKey) {
  expect_load_error(rewrite(base_, drop_key("llama.attention.layer_norm_rms_epsilon"), "no-eps"),
                    "missing required metadata key 'llama.attention.layer_norm_rms_epsilon'");
  expect_load_error(rewrite(base_, drop_key("llama.block_count"), "no-layers"), "'llama.block_count'");
  expect_load_error(rewrite(base_, drop_key("general.architecture"), "no-arch"), "general.architecture");
}

TEST_F(ModelDefects, BadValues) {
  const auto set = [&](const char* key, gguf::Value v, const char* name) {
    Edit e;
    e.extra = [=](gguf::Writer& w) { w.set(key, v); };
    return rewrite(base_, e, name);
  };
  expect_load_error(set("general.architecture", gguf::Value::string("gptj"), "arch"),
                    "unsupported architecture 'gptj'");
  expect_load_error(set("llama.attention.head_count_kv", gguf::Value::u32(3), "kv3"),
                    "head_count_kv");
  expect_load_error(set("llama.rope.freq_base", gguf::Value::f32(NAN), "nan"),
                    "llama.rope.freq_base");
  expect_load_error(set("llama.embedding_length", gguf::Value::string("x"), "type"),
                    "llama.embedding_length");
  expect_load_error(set("llama.rope.scaling.type", gguf::Value::string("yarn"), "yarn"),
                    "unsupported rope scaling type 'yarn'");
  expect_load_error(set("llama.feed_forward_length", gguf::Value::u32(100), "ffn"),
                    "tensor 'blk.0.ffn_gate.weight': shape");
}

TEST_F(ModelDefects, MissingTensor) {
  Edit e;
  e.drop_tensor = "blk.2.attn_k.weight";
  expect_load_error(rewrite(base_, e, "no-k"), "missing tensor 'blk.2.attn_k.weight'");
}

TEST_F(ModelDefects, UnsupportedTensorType) {
  // Replace one tensor by a Q2_K tensor of the same shape (known type, no kernels).
  const gguf::File f = gguf::File::open(base_);
  const gguf::TensorInfo* t = f.find_tensor("blk.1.ffn_up.weight");
  ASSERT_NE(t, nullptr);
  Edit e;
  e.drop_tensor = t->name;
  const std::vector<int64_t> ne = t->ne;
  e.extra = [&](gguf::Writer& w) {
    std::vector<uint8_t> bytes(row_size(GgmlType::Q2_K, ne[0]) * ne[1], 0);
    w.add_tensor(t->name, GgmlType::Q2_K, ne, bytes.data(), bytes.size());
  };
  expect_load_error(rewrite(base_, e, "q2k"),
                    "tensor 'blk.1.ffn_up.weight': unsupported tensor type q2_K");
}

TEST(ModelLoad, Qwen2RequiresBiases) {
  SyntheticSpec spec;
  spec.arch = "qwen2";
  const std::string path = synth("qwen2", spec);
  EXPECT_TRUE(Model::load(path)->weights().layers[0].bq != nullptr);
  Edit e;
  e.drop_tensor = "blk.0.attn_v.bias";
  expect_load_error(rewrite(path, e, "qwen2-nobias"), "missing tensor 'blk.0.attn_v.bias'");
}

}  // namespace
}  // namespace quanta::models
