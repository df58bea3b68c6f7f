// `quanta serve` end to end with stories260K, driven by curl: completions and chat (streamed
// and not), n=2, stop strings, logprobs, validation errors, auth, 413, 429 under a full queue,
// disconnect (streamed or not) -> request cancelled and blocks freed (/metrics), graceful
// shutdown on SIGTERM, speculative decoding (the request field; a --draft-model server).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "testlib/golden.h"
#include "testlib/server_process.h"
#include "testlib/shared_data.h"

namespace quanta {
namespace {

using json = nlohmann::json;

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

std::string write_body(const std::string& body) {
  static int counter = 0;
  const std::string path = testlib::temp_dir() + "/body" + std::to_string(counter++) + ".json";
  std::ofstream(path, std::ios::binary) << body;
  return path;
}

std::string curl_command(const std::string& url, const std::string& body,
                         const std::string& extra) {
  std::string cmd = "curl -s -S -N --max-time 30 -H 'Expect:' " + extra;
  if (!body.empty()) {
    cmd += " -H 'Content-Type: application/json' --data-binary @" + write_body(body);
  }
  return cmd + " '" + url + "'";
}

HttpResult http(const std::string& url, const std::string& body = "",
                const std::string& extra = "") {
  std::string out, err;
  EXPECT_EQ(testlib::run_command(curl_command(url, body, "-D - " + extra), &out, &err), 0) << err;
  HttpResult r;
  const size_t end = out.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.status = std::stoi(out.substr(out.find(' ') + 1, 3));
  size_t pos = out.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = out.find("\r\n", pos);
    const std::string line = out.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    pos = eol + 2;
  }
  r.body = out.substr(end + 4);
  return r;
}

// The "data:" payloads of an SSE body.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    events.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return events;
}

// Value of an unlabelled (or fully labelled) sample in Prometheus text.
double metric(const std::string& metrics, const std::string& name) {
  const size_t at = metrics.find("\n" + name + " ");
  if (at == std::string::npos) return -1.0;
  return std::stod(metrics.substr(at + name.size() + 2));
}

template <class F>
bool eventually(F condition, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

std::string model() {
  return testlib::shared_path("models/stories260K.gguf");
}

class ServeE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testlib::ServerProcess(model(), "-t 1"); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static std::string url(const char* path) { return server_->url() + path; }
  static json post(const char* path, const json& body) {
    const HttpResult r = http(url(path), body.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }
  static testlib::ServerProcess* server_;
};
testlib::ServerProcess* ServeE2E::server_ = nullptr;

TEST_F(ServeE2E, GreedyCompletionMatchesTheGoldenAndStreamsTheSame) {
  const testlib::GoldenCase gc = testlib::load_golden("stories260K").cases[0];
  const json body = {{"model", "stories260K"},
                     {"prompt", gc.prompt},
                     {"max_tokens", gc.greedy.size()},
                     {"temperature", 0}};
  const json r = post("/v1/completions", body);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["text"], gc.greedy_text);
  EXPECT_EQ(r["usage"]["prompt_tokens"], gc.tokens.size());
  EXPECT_EQ(r["usage"]["completion_tokens"], gc.greedy.size());

  json sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  const HttpResult s = http(url("/v1/completions"), sbody.dump());
  EXPECT_EQ(s.headers.at("content-type"), "text/event-stream");
  const std::vector<std::string> ev = sse_events(s.body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 2 < ev.size(); ++i) text += json::parse(ev[i])["choices"][0]["text"];
  EXPECT_EQ(text, gc.greedy_text);
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["usage"]["completion_tokens"], gc.greedy.size());
}

TEST_F(ServeE2E, ChatStreamedAndNot) {
  const json body = {{"messages",
                      {{{"role", "system"}, {"content", "Tell stories."}},
                       {{"role", "user"}, {"content", "Once upon a time"}}}},
                     {"max_tokens", 12},
                     {"temperature", 0},
                     {"ignore_eos", true}};
  const json r = post("/v1/chat/completions", body);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  json sbody = body;
  sbody["stream"] = true;
  const std::vector<std::string> ev =
      sse_events(http(url("/v1/chat/completions"), sbody.dump()).body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json c = json::parse(ev[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    text += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, r["choices"][0]["message"]["content"]);
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["choices"][0]["finish_reason"], "length");
}

TEST_F(ServeE2E, TwoChoicesStopStringsAndLogprobs) {
  const json two = post("/v1/completions", {{"prompt", "Once upon a time"},
                                            {"max_tokens", 16},
                                            {"n", 2},
                                            {"seed", 5},
                                            {"ignore_eos", true}});
  ASSERT_EQ(two["choices"].size(), 2u);
  EXPECT_EQ(two["choices"][1]["index"], 1);
  EXPECT_EQ(two["usage"]["completion_tokens"], 32);

  const json greedy = post("/v1/completions", {{"prompt", "Once upon a time"},
                                               {"max_tokens", 24},
                                               {"temperature", 0},
                                               {"ignore_eos", true}});
  const std::string text = greedy["choices"][0]["text"];
  const std::string stop = text.substr(text.size() / 2, 3);
  const json stopped = post("/v1/completions", {{"prompt", "Once upon a time"},
                                                {"max_tokens", 24},
                                                {"temperature", 0},
                                                {"stop", {"@@@", stop}}});
  EXPECT_EQ(stopped["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");

  const json lp = post(
      "/v1/completions",
      {{"prompt", "Once upon a time"}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 3}});
  const json& l = lp["choices"][0]["logprobs"];
  ASSERT_EQ(l["tokens"].size(), lp["usage"]["completion_tokens"]);
  for (size_t i = 0; i < l["tokens"].size(); ++i) {
    EXPECT_LE(l["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_EQ(l["top_logprobs"][i].size(), 3u);
    double best = -1e30;
    for (const auto& [tok, v] : l["top_logprobs"][i].items())
      best = std::max(best, v.get<double>());
    EXPECT_NEAR(l["token_logprobs"][i].get<double>(), best, 1e-5);  // greedy takes the top one
  }
  const json chat =
      post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                    {"max_tokens", 4},
                                    {"logprobs", true},
                                    {"top_logprobs", 2}});
  EXPECT_EQ(chat["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
}

// quanta's "speculative" extension field: n-gram lookup drafts are verified in the batch,
// greedy text equals the non-speculative text, and /metrics counts the accepted drafts.
TEST_F(ServeE2E, SpeculativeExtensionFieldKeepsGreedyOutput) {
  const std::string prompt =
      "The cat sat on the mat. The cat sat on the mat. The cat sat on the mat. The cat";
  json body = {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}};
  const json plain = post("/v1/completions", body);
  const double accepted_before =
      metric(http(url("/metrics")).body, "quanta_spec_accepted_tokens_total");
  ASSERT_GE(accepted_before, 0.0);
  body["speculative"] = {{"ngram", 2}, {"max_draft", 6}};
  const json spec = post("/v1/completions", body);
  EXPECT_EQ(spec["choices"][0]["text"], plain["choices"][0]["text"]);
  EXPECT_EQ(spec["usage"]["completion_tokens"], 40);
  const std::string m = http(url("/metrics")).body;
  EXPECT_GT(metric(m, "quanta_spec_accepted_tokens_total"), accepted_before);
  EXPECT_GT(metric(m, "quanta_spec_draft_tokens_total"), 0.0);
  body["speculative"] = {{"ngram", 99}};
  const HttpResult bad = http(url("/v1/completions"), body.dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"]["param"], "speculative.ngram");
}

// `quanta serve --draft-model`: requests speculate with the draft model by default (batched
// with plain ones), and a greedy completion equals the non-speculative server's.
TEST_F(ServeE2E, DraftModelServerKeepsGreedyOutput) {
  const json body = {{"prompt", "Once upon a time, there was a little girl"},
                     {"max_tokens", 48},
                     {"temperature", 0},
                     {"ignore_eos", true}};
  const json plain = post("/v1/completions", body);
  testlib::ServerProcess draft_server(
      model(), "-t 1 --draft-max 6 --draft-model " +
                   testlib::shared_path("models/stories260K-Q8_0mix.gguf"));
  const auto draft_post = [&](const json& b) {
    return http(draft_server.url() + "/v1/completions", b.dump());
  };
  const HttpResult spec = draft_post(body);
  ASSERT_EQ(spec.status, 200) << spec.body;
  EXPECT_EQ(json::parse(spec.body)["choices"][0]["text"], plain["choices"][0]["text"]);
  const std::string m = http(draft_server.url() + "/metrics").body;
  EXPECT_GT(metric(m, "quanta_spec_draft_model_passes_total"), 0.0);
  EXPECT_GT(metric(m, "quanta_spec_accepted_tokens_total"), 20.0);
  EXPECT_EQ(metric(m, "quanta_spec_draft_kv_blocks_used"), 0.0);
  json fixed = body;
  fixed["speculative"] = {{"draft", true}, {"min_draft", 3}, {"max_draft", 3}};
  const HttpResult spec3 = draft_post(fixed);
  ASSERT_EQ(spec3.status, 200) << spec3.body;
  EXPECT_EQ(json::parse(spec3.body)["choices"][0]["text"], plain["choices"][0]["text"]);
  // The shared server has no draft model: asking for it is a 400.
  const HttpResult bad = http(url("/v1/completions"), fixed.dump());
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(ServeE2E, EveryValidationErrorIsA400NamingTheField) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"prompt", ""}}, "prompt"},
      {{{"prompt", "x"}, {"max_tokens", 0}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 100000}}, "max_tokens"},
      {{{"prompt", {1, 2, 100000}}}, "prompt"},
      {{{"prompt", "x"}, {"temperature", -1}}, "temperature"},
      {{{"prompt", "x"}, {"top_p", 2}}, "top_p"},
      {{{"prompt", "x"}, {"top_k", "a"}}, "top_k"},
      {{{"prompt", "x"}, {"min_p", 2}}, "min_p"},
      {{{"prompt", "x"}, {"seed", 1.5}}, "seed"},
      {{{"prompt", "x"}, {"frequency_penalty", 9}}, "frequency_penalty"},
      {{{"prompt", "x"}, {"presence_penalty", 9}}, "presence_penalty"},
      {{{"prompt", "x"}, {"repetition_penalty", -1}}, "repetition_penalty"},
      {{{"prompt", "x"}, {"stop", {"a", "b", "c", "d", "e"}}}, "stop"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"stream", 1}}, "stream"},
      {{{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}, "stream_options"},
      {{{"prompt", "x"}, {"logprobs", 9}}, "logprobs"},
      {{{"prompt", "x"}, {"ignore_eos", "yes"}}, "ignore_eos"},
      {{{"prompt", "x"}, {"model", 1}}, "model"},
  };
  for (const auto& [body, param] : cases) {
    const HttpResult r = http(url("/v1/completions"), body.dump());
    EXPECT_EQ(r.status, 400) << body.dump();
    const json e = json::parse(r.body)["error"];
    EXPECT_EQ(e["param"], param) << r.body;
    EXPECT_EQ(e["type"], "invalid_request_error");
    EXPECT_TRUE(e["code"].is_null());
  }
  std::string prompt;
  for (int i = 0; i < 1500; ++i) prompt += "Once upon a time ";
  const HttpResult too_long = http(url("/v1/completions"), json{{"prompt", prompt}}.dump());
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(json::parse(too_long.body)["error"]["param"], "prompt");
  for (const json& body :
       {json{{"messages", json::array()}},
        json{{"messages", {{{"role", "bot"}, {"content", "x"}}}}},
        json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"top_logprobs", 2}}}) {
    const HttpResult r = http(url("/v1/chat/completions"), body.dump());
    EXPECT_EQ(r.status, 400) << body.dump();
  }
  const std::string metrics = http(url("/metrics")).body;
  EXPECT_NE(metrics.find("status=\"400\""), std::string::npos);
}

TEST_F(ServeE2E, ModelsHealthAndMetrics) {
  EXPECT_EQ(json::parse(http(url("/v1/models")).body)["data"][0]["id"], "stories260K");
  EXPECT_EQ(json::parse(http(url("/health")).body)["status"], "ok");
  const std::string m = http(url("/metrics")).body;
  for (const char* name : {"quanta_time_to_first_token_seconds_bucket", "quanta_kv_blocks_free",
                           "quanta_requests_running"}) {
    EXPECT_NE(m.find(name), std::string::npos) << name;
  }
}

// A client that goes away has its request cancelled and its blocks freed: mid-stream (a write
// fails) and while waiting for a whole response (the handler probes the connection).
TEST_F(ServeE2E, DisconnectCancelsAndFreesBlocksStreamedOrNot) {
  const auto cancelled = [] {
    const std::string m = http(url("/metrics")).body;
    const size_t at = m.find("quanta_requests_total{outcome=\"cancelled\"} ");
    return at == std::string::npos ? -1.0 : std::stod(m.substr(m.find(' ', at) + 1));
  };
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "streamed" : "whole response");
    const double before = cancelled();
    const json body = {{"prompt", "Once upon a time"},
                       {"max_tokens", 2000},
                       {"ignore_eos", true},
                       {"stream", stream}};
    testlib::ChildProcess curl(curl_command(url("/v1/completions"), body.dump(), ""));
    ASSERT_TRUE(eventually(
        [&] { return metric(http(url("/metrics")).body, "quanta_requests_running") == 1; }, 10));
    if (stream) {
      ASSERT_TRUE(
          eventually([&] { return curl.stdout_text().find("data: ") != std::string::npos; }, 10));
    }
    EXPECT_GT(metric(http(url("/metrics")).body, "quanta_kv_blocks_used"), 0.0);
    curl.signal(SIGKILL);
    EXPECT_TRUE(eventually([&] { return cancelled() == before + 1; }, 5)) << cancelled();
    EXPECT_TRUE(eventually(
        [&] { return metric(http(url("/metrics")).body, "quanta_kv_blocks_used") == 0; }, 5));
    EXPECT_EQ(metric(http(url("/metrics")).body, "quanta_requests_running"), 0.0);
    if (!stream) {
      EXPECT_EQ(curl.stdout_text(), "");  // killed before any answer
    }
  }
}

TEST(ServeE2ELimits, AuthBodyLimitAndFullQueue) {
  testlib::ServerProcess server(model(),
                                "-t 1 --api-key sk-test --max-body 4096 "
                                "--max-queue 1 --max-running 1");
  const std::string auth = "-H 'Authorization: Bearer sk-test'";
  const std::string completions = server.url() + "/v1/completions";
  const json small = {{"prompt", "Hi"}, {"max_tokens", 2}};
  EXPECT_EQ(http(completions, small.dump()).status, 401);
  const HttpResult wrong = http(completions, small.dump(), "-H 'Authorization: Bearer sk-tesT'");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(json::parse(wrong.body)["error"]["type"], "invalid_request_error");
  EXPECT_EQ(http(completions, small.dump(), auth).status, 200);
  EXPECT_EQ(http(server.url() + "/health").status, 200);
  EXPECT_EQ(http(server.url() + "/v1/models").status, 401);
  const HttpResult big = http(completions, json{{"prompt", std::string(5000, 'a')}}.dump(), auth);
  EXPECT_EQ(big.status, 413);
  EXPECT_TRUE(json::parse(big.body).contains("error"));

  const auto gauge = [&](const char* name) {
    return metric(http(server.url() + "/metrics", "", auth).body, name);
  };
  const json longer = {
      {"prompt", "Once upon a time"}, {"max_tokens", 1900}, {"ignore_eos", true}, {"stream", true}};
  testlib::ChildProcess a(curl_command(completions, longer.dump(), auth));
  ASSERT_TRUE(eventually([&] { return gauge("quanta_requests_running") == 1; }, 10));
  testlib::ChildProcess b(curl_command(completions, longer.dump(), auth));
  ASSERT_TRUE(eventually([&] { return gauge("quanta_requests_waiting") == 1; }, 10));
  const HttpResult full = http(completions, small.dump(), auth);
  EXPECT_EQ(full.status, 429) << full.body;
  ASSERT_TRUE(full.headers.count("retry-after"));
  EXPECT_GE(std::stoi(full.headers.at("retry-after")), 1);
  a.signal(SIGKILL);
  b.signal(SIGKILL);
  EXPECT_TRUE(eventually([&] { return gauge("quanta_kv_blocks_used") == 0; }, 5));
}

TEST(ServeE2EStartup, UnsupportedChatTemplateIsAClearErrorUnlessOverridden) {
  gguf::Writer w = gguf::Writer::from_file(gguf::File::open(model()));
  w.set("tokenizer.chat_template", gguf::Value::string("{{ '<start_of_turn>' + role }}"));
  const std::string path = testlib::temp_dir() + "/odd-template.gguf";
  w.write(path);
  std::string out, err;
  EXPECT_EQ(
      testlib::run_command(testlib::quanta_binary() + " serve --port 0 -m " + path, &out, &err), 1);
  EXPECT_NE(err.find("unsupported chat template"), std::string::npos) << err;
  EXPECT_NE(err.find("<start_of_turn>"), std::string::npos) << err;
  testlib::ServerProcess server(path, "-t 1 --chat-template llama2");
  const HttpResult r =
      http(server.url() + "/v1/chat/completions",
           json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 2}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  const HttpResult bad =
      http(server.url() + "/v1/chat/completions",
           json{{"messages", {{{"role", "assistant"}, {"content", "Hi"}}}}}.dump());
  EXPECT_EQ(bad.status, 400);  // Llama-2 conversations start with the user
  EXPECT_EQ(json::parse(bad.body)["error"]["param"], "messages");
}

TEST(ServeE2EShutdown, SigtermFinishesInFlightRequestsAndExitsZero) {
  testlib::ServerProcess server(model(), "-t 1");
  const json body = {
      {"prompt", "Once upon a time"}, {"max_tokens", 400}, {"ignore_eos", true}, {"stream", true}};
  testlib::ChildProcess curl(curl_command(server.url() + "/v1/completions", body.dump(), ""));
  ASSERT_TRUE(
      eventually([&] { return curl.stdout_text().find("data: ") != std::string::npos; }, 10));
  server.process().signal(SIGTERM);
  EXPECT_EQ(server.process().wait(15), 0);
  EXPECT_EQ(curl.wait(5), 0);
  const std::vector<std::string> ev = sse_events(curl.stdout_text());
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.back(), "[DONE]");
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace quanta
