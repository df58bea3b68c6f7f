// Golden JSON loading with nlohmann::json.
#include "testlib/golden.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "testlib/shared_data.h"

namespace quanta::testlib {

Golden load_golden(const std::string& name) {
  const std::string path = shared_path("golden/" + name + ".json");
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "FATAL: cannot open golden file %s\n", path.c_str());
    std::exit(2);
  }
  const nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.model = j.at("model").get<std::string>();
  g.n_vocab = j.at("n_vocab").get<int32_t>();
  for (const auto& c : j.at("cases")) {
    GoldenCase gc;
    gc.prompt = c.at("prompt").get<std::string>();
    gc.add_bos = c.at("add_bos").get<bool>();
    gc.tokens = c.at("tokens").get<std::vector<int32_t>>();
    for (const auto& t : c.at("top")) {
      GoldenTop top;
      top.logsumexp = t.at("logsumexp").get<float>();
      top.ids = t.at("ids").get<std::vector<int32_t>>();
      top.logits = t.at("logits").get<std::vector<float>>();
      gc.top.push_back(std::move(top));
    }
    gc.last_logits = c.at("last_logits").get<std::vector<float>>();
    gc.greedy = c.at("greedy").get<std::vector<int32_t>>();
    gc.greedy_text = c.at("greedy_text").get<std::string>();
    gc.greedy_gap = c.at("greedy_gap").get<std::vector<float>>();
    g.cases.push_back(std::move(gc));
  }
  return g;
}

}  // namespace quanta::testlib
