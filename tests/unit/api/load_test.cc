// Load-test pieces: percentiles and summaries, Poisson arrivals, URL and SSE parsing, and a
// LoadClient round trip (streamed and not) against the server over the scripted engine.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/load_client.h"
#include "api/load_stats.h"
#include "api/server.h"
#include "core/error.h"
#include "fake_engine.h"
#include "gguf/reader.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

TEST(LoadStats, PercentilesInterpolateLikeNumpy) {
  const std::vector<double> v = {4, 1, 3, 2, 5};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(percentile(v, 50), 3.0);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 5.0);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 4.6);  // numpy.percentile([1..5], 90)
  EXPECT_DOUBLE_EQ(percentile(v, 99), 4.96);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7.0);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0.0);
}

TEST(LoadStats, SummaryCountsThroughputAndTpot) {
  std::vector<RequestSample> s(4);
  s[0] = {true, 0.1, 1.1, 10, 11, ""};  // TPOT 0.1
  s[1] = {true, 0.3, 2.3, 10, 21, ""};  // TPOT 0.1
  s[2] = {true, 0.2, 0.2, 10, 1, ""};   // one token: no TPOT
  s[3] = {false, 0, 0, 0, 0, "HTTP 429: busy"};
  const LoadReport r = summarize(s, 2.0);
  EXPECT_EQ(r.completed, 3);
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.total_output_tokens, 33);
  EXPECT_EQ(r.total_input_tokens, 30);
  EXPECT_DOUBLE_EQ(r.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(r.output_throughput, 16.5);
  EXPECT_NEAR(r.tpot.p50, 0.1, 1e-12);
  EXPECT_NEAR(r.ttft.p50, 0.2, 1e-12);
  EXPECT_NEAR(r.e2e.mean, (1.1 + 2.3 + 0.2) / 3, 1e-12);
  EXPECT_EQ(r.error_examples, std::vector<std::string>{"HTTP 429: busy"});
  const auto j = nlohmann::json::parse(report_json(r));
  EXPECT_EQ(j["errors"], 1);
  EXPECT_NEAR(j["tpot_ms"]["p99"].get<double>(), 100.0, 1e-9);
  const std::string text = report_text(r);
  EXPECT_NE(text.find("TTFT"), std::string::npos);
  EXPECT_NE(text.find("16.5 tokens/s"), std::string::npos);
}

TEST(LoadStats, PoissonArrivalsHaveTheRateAndAreSeeded) {
  const std::vector<double> t = poisson_arrivals(20000, 4.0, 9);
  EXPECT_EQ(t.front(), 0.0);
  for (size_t i = 1; i < t.size(); ++i) ASSERT_GE(t[i], t[i - 1]);
  EXPECT_NEAR(t.back() / (t.size() - 1), 0.25, 0.01);  // mean gap 1 / rate
  EXPECT_EQ(poisson_arrivals(50, 4.0, 9), std::vector<double>(t.begin(), t.begin() + 50));
  EXPECT_NE(poisson_arrivals(50, 4.0, 10), std::vector<double>(t.begin(), t.begin() + 50));
  EXPECT_THROW(poisson_arrivals(5, 0.0, 1), Error);
}

TEST(LoadClient, ParsesUrls) {
  const LoadTarget t = parse_url("http://127.0.0.1:8123/");
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, 8123);
  EXPECT_EQ(parse_url("http://localhost").port, 80);
  EXPECT_THROW(parse_url("https://x:1"), Error);
  EXPECT_THROW(parse_url("http://x:99999"), Error);
  EXPECT_THROW(parse_url("http://:80"), Error);
}

TEST(LoadClient, SseParserHandlesAnyChunking) {
  const std::string stream =
      "data: {\"a\":1}\n\n: comment\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    SseParser p;
    std::vector<std::string> events;
    for (size_t i = 0; i < stream.size(); i += chunk) p.feed(stream.substr(i, chunk), events);
    ASSERT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"})) << chunk;
  }
}

TEST(LoadClient, RoundTripAgainstTheServer) {
  const gguf::File file = gguf::File::open(testlib::shared_path("models/stories260K.gguf"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
  testing::FakeEngine engine;
  engine.token_interval = std::chrono::milliseconds(5);
  ServerOptions opts;
  opts.port = 0;
  opts.api_key = "k";
  Server server(engine, tok, ChatTemplate{}, opts);
  const int32_t port = server.bind();
  std::thread run([&] { server.run(); });

  {  // clients closed before shutdown, so no idle keep-alive connection delays it
    LoadTarget target{"127.0.0.1", port, "k", ""};
    LoadClient client(target);
    const RequestSample streamed = client.send({"Once upon a time", 8, true, true});
    ASSERT_TRUE(streamed.ok) << streamed.error;
    EXPECT_EQ(streamed.output_tokens, 8);
    EXPECT_EQ(streamed.prompt_tokens,
              static_cast<int32_t>(tok.encode("Once upon a time", true).size()));
    EXPECT_GT(streamed.ttft_s, 0.0);
    EXPECT_GT(streamed.e2e_s, streamed.ttft_s + 0.02);  // 7 more tokens 5 ms apart
    EXPECT_TRUE(engine.streams().back()->request().ignore_eos);
    const RequestSample whole = client.send({"Once upon a time", 3, false, true});
    ASSERT_TRUE(whole.ok) << whole.error;
    EXPECT_EQ(whole.output_tokens, 3);
    EXPECT_EQ(whole.ttft_s, whole.e2e_s);

    LoadClient unauthorized({"127.0.0.1", port, "wrong", ""});
    const RequestSample denied = unauthorized.send({"x", 3, true, true});
    EXPECT_FALSE(denied.ok);
    EXPECT_NE(denied.error.find("HTTP 401"), std::string::npos) << denied.error;

    PromptBuilder prompts(default_words(), 3);
    const int32_t words = calibrate_prompt_words(client, prompts, 40);
    const int32_t got = static_cast<int32_t>(tok.encode(prompts.make(words), true).size());
    EXPECT_NEAR(got, 40, 8);
  }
  server.shutdown();
  run.join();
}

}  // namespace
}  // namespace quanta::api
