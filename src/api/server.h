// The OpenAI-compatible HTTP server over a serve::Engine (cpp-httplib). Handler threads parse,
// validate and tokenize, then only talk to the engine through submit() and RequestStreams;
// they never run model code.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/chat_template.h"
#include "serve/engine.h"

namespace quanta::tokenizer {
class Tokenizer;
}

namespace quanta::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int32_t port = 8080;                        // 0 = any free port (bind() returns it)
  std::string api_key;                        // "" = no authentication
  std::string cors_origin;                    // "" = no CORS headers
  std::string model_id = "quanta";            // the id /v1/models lists and responses echo
  size_t max_body_bytes = 4u << 20;           // larger bodies get 413
  int32_t http_threads = 64;                  // connections served at once (streams hold one each)
  std::chrono::milliseconds poll{20};         // RequestStream::next wait per provider call
  std::chrono::milliseconds keepalive{2000};  // silent streams get an SSE comment this often
  std::chrono::milliseconds drain_timeout{10000};  // shutdown: wait this long, then cancel
};

class Server {
 public:
  // `engine` and `tok` outlive the server.
  Server(serve::Engine& engine, const tokenizer::Tokenizer& tok, ChatTemplate chat_template,
         ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws quanta::Error.
  int32_t bind();
  // Serves until shutdown() finishes. Call after bind().
  void run();
  // Graceful shutdown, from any thread but run()'s: new requests get 503, in-flight requests
  // finish (cancelled after drain_timeout), the engine shuts down, then run() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quanta::api
