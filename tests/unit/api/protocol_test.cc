// Request parsing: defaults, every field, and a 400 naming the field for each invalid value.
#include "api/protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace quanta::api {
namespace {

ApiRequest completions(const std::string& body) {
  return parse_request(Endpoint::kCompletions, body, 77);
}
ApiRequest chat(const std::string& body) {
  return parse_request(Endpoint::kChat, body, 77);
}

// The ApiError of a body, checking status 400 and the named field.
void expect_bad(Endpoint ep, const std::string& body, const std::string& param) {
  try {
    parse_request(ep, body, 1);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find(param.empty() ? "" : param.substr(0, 4)),
              std::string::npos)
        << e.what();
  }
}

TEST(Protocol, CompletionDefaultsAreOpenAIs) {
  const ApiRequest r = completions(R"({"model":"m","prompt":"Hello"})");
  EXPECT_EQ(r.prompt_text, "Hello");
  EXPECT_FALSE(r.prompt_is_tokens);
  EXPECT_EQ(r.max_tokens.value(), 16);
  EXPECT_EQ(r.gen.n, 1);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 1.0f);
  EXPECT_EQ(r.gen.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.0f);
  EXPECT_EQ(r.gen.sampling.seed, 77u);
  EXPECT_EQ(r.gen.top_logprobs, -1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.gen.ignore_eos);
}

TEST(Protocol, CompletionEveryField) {
  const ApiRequest r = completions(
      R"({"prompt":[1,2,3],"max_tokens":5,"temperature":0,"top_p":0.5,"top_k":7,"min_p":0.1,
          "seed":42,"frequency_penalty":0.5,"presence_penalty":-0.5,"repetition_penalty":1.1,
          "stop":["a","bc"],"n":2,"stream":true,"stream_options":{"include_usage":true},
          "logprobs":3,"ignore_eos":true,"user":"u"})");
  EXPECT_TRUE(r.prompt_is_tokens);
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.max_tokens.value(), 5);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.5f);
  EXPECT_EQ(r.gen.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.1f);
  EXPECT_EQ(r.gen.sampling.seed, 42u);
  EXPECT_FLOAT_EQ(r.gen.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.presence_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.gen.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.gen.top_logprobs, 3);
  EXPECT_TRUE(r.gen.ignore_eos);
}

TEST(Protocol, PromptForms) {
  EXPECT_EQ(completions(R"({"prompt":["one"]})").prompt_text, "one");
  EXPECT_EQ(completions(R"({"prompt":[[5,6]]})").prompt_tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(completions(R"({"prompt":"x","stop":"\n"})").gen.stop,
            (std::vector<std::string>{"\n"}));
  EXPECT_EQ(completions(R"({"prompt":"x","top_k":-1})").gen.sampling.top_k, 0);
  EXPECT_EQ(completions(R"({"prompt":"x","seed":-1})").gen.sampling.seed, ~0ull);
}

TEST(Protocol, ChatFields) {
  const ApiRequest r = chat(
      R"({"model":"m","messages":[{"role":"developer","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
          "max_completion_tokens":9,"max_tokens":3,"logprobs":true,"top_logprobs":4})");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.max_tokens.value(), 9);  // max_completion_tokens wins
  EXPECT_EQ(r.gen.top_logprobs, 4);
  EXPECT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}]})").max_tokens.has_value());
  EXPECT_EQ(
      chat(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})").gen.top_logprobs, 0);
}

TEST(Protocol, EveryInvalidFieldIsNamed) {
  const Endpoint C = Endpoint::kCompletions, H = Endpoint::kChat;
  expect_bad(C, R"({"prompt":"x","model":3})", "model");
  expect_bad(C, R"({})", "prompt");
  expect_bad(C, R"({"prompt":""})", "prompt");
  expect_bad(C, R"({"prompt":[]})", "prompt");
  expect_bad(C, R"({"prompt":["a","b"]})", "prompt");
  expect_bad(C, R"({"prompt":[1,-2]})", "prompt");
  expect_bad(C, R"({"prompt":7})", "prompt");
  expect_bad(C, R"({"prompt":"x","max_tokens":0})", "max_tokens");
  expect_bad(C, R"({"prompt":"x","max_tokens":"5"})", "max_tokens");
  expect_bad(C, R"({"prompt":"x","max_tokens":1.5})", "max_tokens");
  expect_bad(C, R"({"prompt":"x","temperature":2.5})", "temperature");
  expect_bad(C, R"({"prompt":"x","temperature":"hot"})", "temperature");
  expect_bad(C, R"({"prompt":"x","top_p":0})", "top_p");
  expect_bad(C, R"({"prompt":"x","top_p":1.1})", "top_p");
  expect_bad(C, R"({"prompt":"x","top_k":-2})", "top_k");
  expect_bad(C, R"({"prompt":"x","min_p":1.5})", "min_p");
  expect_bad(C, R"({"prompt":"x","seed":"s"})", "seed");
  expect_bad(C, R"({"prompt":"x","frequency_penalty":3})", "frequency_penalty");
  expect_bad(C, R"({"prompt":"x","presence_penalty":-3})", "presence_penalty");
  expect_bad(C, R"({"prompt":"x","repetition_penalty":0})", "repetition_penalty");
  expect_bad(C, R"({"prompt":"x","stop":["a","b","c","d","e"]})", "stop");
  expect_bad(C, R"({"prompt":"x","stop":[1]})", "stop");
  expect_bad(C, R"({"prompt":"x","stop":""})", "stop");
  expect_bad(C, R"({"prompt":"x","n":0})", "n");
  expect_bad(C, R"({"prompt":"x","n":17})", "n");
  expect_bad(C, R"({"prompt":"x","best_of":3})", "best_of");
  expect_bad(C, R"({"prompt":"x","stream":"yes"})", "stream");
  expect_bad(C, R"({"prompt":"x","stream_options":{"include_usage":true}})", "stream_options");
  expect_bad(C, R"({"prompt":"x","stream":true,"stream_options":{"include_usage":1}})",
             "stream_options.include_usage");
  expect_bad(C, R"({"prompt":"x","logprobs":6})", "logprobs");
  expect_bad(C, R"({"prompt":"x","logprobs":true})", "logprobs");
  expect_bad(C, R"({"prompt":"x","ignore_eos":1})", "ignore_eos");
  expect_bad(C, R"({"prompt":"x","echo":true})", "echo");
  expect_bad(C, R"({"prompt":"x","suffix":"s"})", "suffix");
  expect_bad(C, R"({"prompt":"x","logit_bias":{"5":1}})", "logit_bias");
  expect_bad(C, R"({"prompt":"x","user":5})", "user");
  expect_bad(H, R"({"prompt":"x"})", "messages");
  expect_bad(H, R"({"messages":[]})", "messages");
  expect_bad(H, R"({"messages":["hi"]})", "messages[0]");
  expect_bad(H, R"({"messages":[{"content":"hi"}]})", "messages[0].role");
  expect_bad(H, R"({"messages":[{"role":"robot","content":"hi"}]})", "messages[0].role");
  expect_bad(H, R"({"messages":[{"role":"user"}]})", "messages[0].content");
  expect_bad(H, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
             "messages[0].content");
  expect_bad(H, R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":0})",
             "max_completion_tokens");
  expect_bad(H, R"({"messages":[{"role":"user","content":"x"}],"logprobs":2})", "logprobs");
  expect_bad(H, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "top_logprobs");
  expect_bad(H, R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})",
             "top_logprobs");
  expect_bad(H, R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
             "tools");
  expect_bad(
      H, R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})",
      "response_format");
}

TEST(Protocol, MalformedBodies) {
  expect_bad(Endpoint::kCompletions, "{not json", "");
  expect_bad(Endpoint::kCompletions, "[1,2]", "");
}

TEST(Protocol, ErrorBodyIsOpenAIShaped) {
  const auto j = nlohmann::json::parse(error_body(ApiError(400, "bad top_p", "top_p")));
  EXPECT_EQ(j["error"]["message"], "bad top_p");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_TRUE(
      nlohmann::json::parse(error_body("m", "server_error", ""))["error"]["param"].is_null());
}

}  // namespace
}  // namespace quanta::api
