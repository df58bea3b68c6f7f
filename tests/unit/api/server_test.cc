// The HTTP layer against a scripted engine: response and stream shapes, validation and context
// errors, auth, 404/413/429 bodies, CORS, disconnect -> cancel (streamed or not; pipelined
// requests are no disconnect), graceful shutdown.
#include "api/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "fake_engine.h"
#include "gguf/reader.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

using json = nlohmann::json;

const tokenizer::Tokenizer& stories_tokenizer() {
  static const gguf::File file = gguf::File::open(testlib::shared_path("models/stories260K.gguf"));
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
  return tok;
}

// A raw HTTP/1.1 request (the test controls when the connection closes).
std::string raw_post(const std::string& body, bool close) {
  return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

// A connected loopback socket that has sent `data`, or -1.
int connect_and_send(int32_t port, const std::string& data) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

template <class F>
bool eventually(F condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions opts = {}) {
    opts.port = 0;
    opts.model_id = "test-model";
    opts.keepalive = std::chrono::milliseconds(100);
    server_ = std::make_unique<Server>(engine_, stories_tokenizer(), ChatTemplate{}, opts);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      server_->shutdown();
      thread_.join();
    }
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       httplib::Headers headers = {}) {
    return client().Post(path.c_str(), headers, body, "application/json");
  }
  // SSE "data:" payloads of a stream body.
  static std::vector<std::string> events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      const size_t end = body.find("\n\n", pos);
      out.push_back(body.substr(pos + 6, end - pos - 6));
      pos = end;
    }
    return out;
  }

  testing::FakeEngine engine_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int32_t port_ = 0;
};

TEST_F(ServerTest, CompletionResponseShape) {
  start();
  const auto res = post("/v1/completions",
                        R"({"model":"x","prompt":"Once upon","max_tokens":3,"n":2,"logprobs":2})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "test-model");
  EXPECT_GT(j["created"].get<int64_t>(), 1700000000);
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["text"], "t0 t1 t2 ");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json({"t0 ", "t1 ", "t2 "}));
  EXPECT_EQ(lp["text_offset"], json({0, 3, 6}));
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  const std::vector<int32_t> prompt = stories_tokenizer().encode("Once upon", true);
  EXPECT_EQ(engine_.streams().at(0)->request().prompt, prompt);
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt.size() + 6);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
}

TEST_F(ServerTest, ChatResponseShapeAndTemplate) {
  start();
  const auto res = post("/v1/chat/completions",
                        R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,
                            "logprobs":true,"top_logprobs":1})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"], json({{"role", "assistant"}, {"content", "t0 t1 "}}));
  const json& c0 = j["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(c0["token"], "t0 ");
  EXPECT_EQ(c0["bytes"], json({'t', '0', ' '}));
  EXPECT_EQ(c0["top_logprobs"].size(), 1u);
  EXPECT_EQ(engine_.streams().at(0)->request().prompt,
            stories_tokenizer().encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                                       true, true));
  // No max_tokens: the rest of the context.
  const auto res2 =
      post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(res2->status, 200);
  const auto& req2 = engine_.streams().at(1)->request();
  EXPECT_EQ(req2.prompt.size() + req2.max_tokens, 256u);
}

TEST_F(ServerTest, StreamsChunksUsageAndDone) {
  start();
  const auto res = post("/v1/chat/completions",
                        R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"n":2,
                            "stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> ev = events(res->body);
  ASSERT_GE(ev.size(), 4u);
  EXPECT_EQ(ev.back(), "[DONE]");
  const json usage = json::parse(ev[ev.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 4);
  std::string text[2];
  int finishes = 0;
  for (size_t i = 0; i + 2 < ev.size(); ++i) {
    const json c = json::parse(ev[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_TRUE(c["usage"].is_null());
    const json& ch = c["choices"][0];
    if (ch["delta"].contains("content")) text[ch["index"].get<int>()] += ch["delta"]["content"];
    if (!ch["finish_reason"].is_null()) {
      ++finishes;
      EXPECT_EQ(ch["finish_reason"], "length");
    }
  }
  EXPECT_EQ(text[0], "t0 t1 ");
  EXPECT_EQ(text[1], "t0 t1 ");
  EXPECT_EQ(finishes, 2);
  EXPECT_EQ(json::parse(ev[0])["choices"][0]["delta"]["role"], "assistant");

  const auto res2 = post("/v1/completions", R"({"prompt":"x","max_tokens":1,"stream":true})");
  const std::vector<std::string> ev2 = events(res2->body);
  ASSERT_EQ(ev2.size(), 2u);
  EXPECT_EQ(json::parse(ev2[0])["choices"][0]["text"], "t0 ");
  EXPECT_FALSE(json::parse(ev2[0]).contains("usage"));
}

TEST_F(ServerTest, ValidationAndContextErrorsAre400sNamingTheField) {
  start();
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt":"x","top_p":7})", "top_p"},
      {R"({"prompt":"x","max_tokens":300})", "max_tokens"},
      {R"({"prompt":[1,99999]})", "prompt"},
      {R"({"prompt":"x","stop":["1","2","3","4","5"]})", "stop"},
  };
  for (const auto& [body, param] : cases) {
    const auto res = post("/v1/completions", body);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["error"]["param"], param) << res->body;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  }
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "hello ";
  const auto res = post("/v1/completions", json({{"prompt", long_prompt}}).dump());
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "prompt");
  EXPECT_EQ(engine_.rejected(), std::vector<int>(5, 400));
  EXPECT_TRUE(engine_.streams().empty());
}

TEST_F(ServerTest, AuthIsRequiredExceptForHealth) {
  ServerOptions o;
  o.api_key = "sekret";
  start(o);
  auto res = post("/v1/completions", R"({"prompt":"x"})");
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "invalid_request_error");
  res = post("/v1/completions", R"({"prompt":"x"})", {{"Authorization", "Bearer sekreT"}});
  EXPECT_EQ(res->status, 401);
  res = post("/v1/completions", R"({"prompt":"x"})", {{"Authorization", "Bearer sekret"}});
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(client().Get("/v1/models")->status, 401);
  EXPECT_EQ(client().Get("/metrics")->status, 401);
  EXPECT_EQ(client().Get("/health")->status, 200);
  const auto models = client().Get("/v1/models", {{"Authorization", "Bearer sekret"}});
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "test-model");
  EXPECT_EQ(engine_.rejected(), std::vector<int>(4, 401));
}

TEST_F(ServerTest, OversizedBodyIs413AndUnknownRouteIs404) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  start(o);
  const auto res = post("/v1/completions", json({{"prompt", std::string(2000, 'a')}}).dump());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("1000"),
            std::string::npos);
  const auto missing = client().Get("/v1/nothing");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["type"], "invalid_request_error");
  EXPECT_EQ(engine_.rejected(), (std::vector<int>{413, 404}));
}

TEST_F(ServerTest, FullQueueIs429WithRetryAfter) {
  engine_.max_active = 0;
  start();
  const auto res = post("/v1/completions", R"({"prompt":"x"})");
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "2");  // the engine's 1.5 s, rounded up
  EXPECT_EQ(engine_.rejected(), std::vector<int>{429});
  engine_.retry_after = 1e9;  // the header stays in [1, 60] whatever the engine says
  EXPECT_EQ(post("/v1/completions", R"({"prompt":"x"})")->get_header_value("Retry-After"), "60");
  engine_.retry_after = std::nan("");
  EXPECT_EQ(post("/v1/completions", R"({"prompt":"x"})")->get_header_value("Retry-After"), "1");
}

TEST_F(ServerTest, CorsOnlyWhenAnOriginIsGiven) {
  start();
  EXPECT_FALSE(client().Get("/health")->has_header("Access-Control-Allow-Origin"));
  EXPECT_EQ(client().Options("/v1/completions")->status, 404);
  TearDown();
  ServerOptions o;
  o.cors_origin = "https://app.example";
  start(o);
  EXPECT_EQ(client().Get("/health")->get_header_value("Access-Control-Allow-Origin"),
            "https://app.example");
  const auto pre = client().Options("/v1/chat/completions");
  EXPECT_EQ(pre->status, 204);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
}

TEST_F(ServerTest, ClientDisconnectMidStreamCancelsTheRequest) {
  engine_.token_interval = std::chrono::milliseconds(20);
  start();
  httplib::Client c = client();
  int received = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = R"({"prompt":"x","max_tokens":200,"stream":true})";
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++received < 3; };
  httplib::Response res;
  httplib::Error err;
  c.send(req, res, err);  // returns false once the receiver stops the transfer
  c.stop();
  ASSERT_EQ(engine_.streams().size(), 1u);
  for (int i = 0; i < 200 && !engine_.streams()[0]->client_cancelled(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(engine_.streams()[0]->client_cancelled());
}

// A non-streamed request writes nothing until it ends, so no failed write can reveal that its
// client left: the handler probes the connection while it waits.
TEST_F(ServerTest, ClientDisconnectWhileWaitingForAWholeResponseCancelsTheRequest) {
  engine_.token_interval = std::chrono::milliseconds(20);  // 200 tokens: 4 s
  start();
  const int fd = connect_and_send(port_, raw_post(R"({"prompt":"x","max_tokens":200})", false));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(eventually([&] { return !engine_.streams().empty(); }, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(engine_.streams()[0]->client_cancelled());  // connected: not cancelled
  const auto closed_at = std::chrono::steady_clock::now();
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return engine_.streams()[0]->client_cancelled(); },
                         std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, std::chrono::seconds(1));
}

// The probe peeks: a pipelined next request waiting on the connection is no disconnect, and
// both requests are answered in order.
TEST_F(ServerTest, PipelinedRequestIsNotADisconnect) {
  engine_.token_interval = std::chrono::milliseconds(10);
  start();
  const int fd = connect_and_send(port_, raw_post(R"({"prompt":"x","max_tokens":30})", false));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(eventually([&] { return !engine_.streams().empty(); }, std::chrono::seconds(5)));
  const std::string second = raw_post(R"({"prompt":"x","max_tokens":2})", true);
  ASSERT_EQ(::send(fd, second.data(), second.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(second.size()));
  std::string got;
  char buf[4096];
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) {
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_FALSE(engine_.streams().at(0)->client_cancelled());
  const size_t first = got.find("HTTP/1.1 200");
  ASSERT_NE(first, std::string::npos) << got;
  EXPECT_NE(got.find("HTTP/1.1 200", first + 1), std::string::npos) << got;
  EXPECT_LT(got.find("t29 "), got.rfind("t1 ")) << got;  // the first response comes first
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestsFinish) {
  engine_.token_interval = std::chrono::milliseconds(10);
  start();
  int status = 0;
  std::string body;
  std::thread t([&] {
    const auto res = post("/v1/completions", R"({"prompt":"x","max_tokens":30})");
    if (res) status = res->status, body = res->body;
  });
  while (engine_.streams().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  server_->shutdown();
  thread_.join();
  t.join();
  ASSERT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(engine_.shutdowns(), 1);
  EXPECT_FALSE(engine_.shutdown_cancelled());
}

TEST_F(ServerTest, ShutdownCancelsWhatOutlivesTheDrainTimeout) {
  engine_.token_interval = std::chrono::milliseconds(50);
  // The shutdown starts while the engine is still accepting the request, which must count as
  // in flight already (counted only once submit returned, it was left uncancelled and its
  // client got no answer).
  engine_.submit_delay = std::chrono::milliseconds(60);
  ServerOptions o;
  o.drain_timeout = std::chrono::milliseconds(100);
  start(o);
  std::string body;
  std::thread t([&] {
    const auto res = post("/v1/completions", R"({"prompt":"x","max_tokens":200,"stream":true})");
    if (res) body = res->body;
  });
  while (engine_.streams().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  server_->shutdown();
  thread_.join();
  t.join();
  EXPECT_TRUE(engine_.shutdown_cancelled());
  const std::vector<std::string> ev = events(body);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.back(), "[DONE]");
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["error"]["type"], "server_error");
}

}  // namespace
}  // namespace quanta::api
