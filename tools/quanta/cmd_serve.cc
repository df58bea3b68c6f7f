// `quanta serve`: loads a model, starts the serving engine and the OpenAI-compatible HTTP
// server, prints the listening address, and shuts down gracefully on SIGINT/SIGTERM (exit 0).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "api/chat_template.h"
#include "api/server.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "kv/kv_cache.h"
#include "models/model.h"
#include "serve/engine.h"
#include "spec_flags.h"
#include "tokenizer/tokenizer.h"

namespace quanta::cli {
namespace {

struct ServeFlags {
  std::string model, host = "127.0.0.1", api_key, chat_template, cors_origin, model_name;
  std::string kv_type = "f32";
  std::string kv_transform = kv::key_transform_name(kv::kDefaultKeyTransform);
  int32_t port = 8080;
  float kv_memory_gib = 0.0f;
  uint64_t max_body = 4u << 20;
  bool no_prefix_cache = false;
  std::string draft_model, draft_quant;  // speculative decoding with a draft model
  serve::EngineOptions engine;
};

void add_flags(ArgParser& args, ServeFlags& f) {
  serve::EngineOptions& e = f.engine;
  args.add_string("-m, --model", "PATH", &f.model, "GGUF model file");
  args.add_string("--host", "ADDR", &f.host, "address to listen on (default 127.0.0.1)");
  args.add_int("--port", "N", &f.port, "port; 0 picks a free one (default 8080)");
  args.add_string("--api-key", "KEY", &f.api_key,
                  "require 'Authorization: Bearer KEY' (all routes but /health)");
  args.add_int("--max-batch-tokens", "N", &e.max_batch_tokens,
               "tokens per forward pass, all requests together (default 512)");
  args.add_int("--kv-blocks", "N", &e.kv_blocks, "KV cache blocks in the pool");
  args.add_float("--kv-memory", "GiB", &f.kv_memory_gib,
                 "KV pool size when --kv-blocks is not given");
  args.add_string("--kv-type", "TYPE", &f.kv_type,
                  "KV cache type: f32 (default), f16, q8_0 or q4_0");
  args.add_string("--kv-transform", "MODE", &f.kv_transform, kv::key_transform_help());
  args.add_int("--max-queue", "N", &e.max_queue, "waiting requests before 429 (default 64)");
  args.add_int("--max-running", "N", &e.max_running, "requests computing at once (default 16)");
  args.add_int("-c, --ctx", "N", &e.n_ctx,
               "max prompt + generated tokens per request (default: model's)");
  args.add_int("-t, --threads", "N", &e.n_threads, "compute threads (default: all cores)");
  args.add_string("--chat-template", "NAME", &f.chat_template,
                  "chatml, llama2, llama3, mistral or zephyr (default: from the model)");
  args.add_string("--cors-origin", "ORIGIN", &f.cors_origin, "allow browser requests from ORIGIN");
  args.add_string("--model-name", "ID", &f.model_name,
                  "model id in /v1/models (default: file name)");
  args.add_uint64("--max-body", "BYTES", &f.max_body,
                  "largest request body; larger get 413 (default 4 MiB)");
  args.add_int("--lookup-ngram", "N", &e.lookup_ngram,
               "speculative decoding by n-gram prompt lookup for every request that does not "
               "say otherwise (\"speculative\" field); 0 = off (default)");
  args.add_string("--draft-model", "PATH", &f.draft_model,
                  "speculative decoding with this draft model (same vocabulary) for every "
                  "request that does not say otherwise (\"speculative\" field)");
  args.add_string("--draft-quant", "TYPE", &f.draft_quant,
                  "as --draft-model, the draft being the model itself quantized to TYPE at load "
                  "(e.g. Q4_0; the model must be F32/F16/BF16)");
  args.add_int("--draft-max", "K", &e.draft_max,
               "draft tokens verified per step at most (default 8)");
  args.add_int("--draft-min", "K", &e.draft_min,
               "least draft-model tokens per step; the length adapts in [min, max] to the "
               "measured acceptance (default 1; = --draft-max for a fixed length)");
  args.add_flag("--no-prefix-cache", &f.no_prefix_cache, "disable automatic prefix caching");
  args.require("--model");
}

void validate(const ServeFlags& f) {
  if (f.port < 0 || f.port > 65535) fail("--port must be in [0, 65535], got %d", f.port);
  const serve::EngineOptions& e = f.engine;
  if (e.max_batch_tokens < 1) fail("--max-batch-tokens must be >= 1");
  if (e.kv_blocks < 0) fail("--kv-blocks must be >= 0");
  if (f.kv_memory_gib < 0.0f) fail("--kv-memory must be >= 0");
  if (e.max_queue < 0) fail("--max-queue must be >= 0");
  if (e.max_running < 1) fail("--max-running must be >= 1");
  if (e.n_ctx < 0) fail("--ctx must be >= 0");
  if (e.n_threads < 0) fail("--threads must be >= 0");
  if (e.lookup_ngram < 0 || e.lookup_ngram > serve::kMaxSpecNgram) {
    fail("--lookup-ngram must be in [0, %d], got %d", serve::kMaxSpecNgram, e.lookup_ngram);
  }
  if (e.draft_max < 1 || e.draft_max > serve::kMaxSpecDraft) {
    fail("--draft-max must be in [1, %d], got %d", serve::kMaxSpecDraft, e.draft_max);
  }
  if (!f.draft_model.empty() + !f.draft_quant.empty() + (e.lookup_ngram > 0) > 1) {
    fail("--draft-model, --draft-quant and --lookup-ngram are alternatives: give one");
  }
  const bool with_model = !f.draft_model.empty() || !f.draft_quant.empty();
  if (e.draft_min != 1 && !with_model) fail("--draft-min needs --draft-model or --draft-quant");
  if (e.draft_min < 1 || e.draft_min > e.draft_max) {
    fail("--draft-min must be in [1, --draft-max = %d], got %d", e.draft_max, e.draft_min);
  }
  if (f.max_body < 1024) fail("--max-body must be at least 1024 bytes");
}

std::string default_model_id(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0)
    name.resize(name.size() - 5);
  return name;
}

// Waits for SIGINT/SIGTERM (blocked in every thread) and shuts the server down gracefully.
void watch_signals(sigset_t signals, const std::atomic<bool>& finished, api::Server& server) {
  const timespec tick{0, 200 * 1000 * 1000};
  while (!finished) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      std::fprintf(stderr, "quanta serve: %s: finishing in-flight requests\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.shutdown();
      return;
    }
  }
}

api::ServerOptions server_options(const ServeFlags& f) {
  api::ServerOptions so;
  so.host = f.host;
  so.port = f.port;
  so.api_key = f.api_key;
  so.cors_origin = f.cors_origin;
  so.model_id = f.model_name.empty() ? default_model_id(f.model) : f.model_name;
  so.max_body_bytes = f.max_body;
  so.http_threads = std::max(64, f.engine.max_running + f.engine.max_queue + 16);
  return so;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  ServeFlags f;
  ArgParser args("quanta serve -m MODEL [--host ADDR] [--port N] [options]",
                 "Serves the model over an OpenAI-compatible HTTP API (/v1/completions, "
                 "/v1/chat/completions, /v1/models, /health, /metrics) with continuous batching. "
                 "SIGINT/SIGTERM finish in-flight requests, then exit.");
  add_flags(args, f);
  if (!args.parse(argc, argv)) return 0;
  validate(f);
  f.engine.kv_memory_bytes = static_cast<uint64_t>(f.kv_memory_gib * 1024.0 * 1024.0 * 1024.0);
  f.engine.prefix_caching = !f.no_prefix_cache;
  f.engine.kv_type = kv::parse_kv_type(f.kv_type);
  f.engine.kv_transform = kv::parse_key_transform(f.kv_transform);

  // Signals are taken by one thread (sigtimedwait): block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished client must not kill the server

  const auto model = models::Model::load(f.model);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model->file());
  std::string note;
  const api::ChatTemplate chat = api::chat_template_for(model->file(), tok, f.chat_template, &note);
  if (!note.empty()) std::fprintf(stderr, "quanta serve: note: %s\n", note.c_str());
  SpecFlags spec;
  spec.draft_model = f.draft_model;
  spec.draft_quant = f.draft_quant;
  const auto draft = load_draft_model(spec, f.model);  // null without a draft
  f.engine.draft_model = draft.get();
  const auto engine = serve::Engine::create(*model, tok, f.engine);

  const api::ServerOptions so = server_options(f);
  api::Server server(*engine, tok, chat, so);
  const int32_t port = server.bind();
  std::printf("quanta serve: listening on http://%s:%d (model %s, context %d, chat template %s)\n",
              f.host.c_str(), port, so.model_id.c_str(), engine->n_ctx(),
              api::chat_family_name(chat.family));
  if (draft) {
    std::printf("quanta serve: speculative decoding with draft %s, draft length %d..%d\n",
                f.draft_quant.empty() ? f.draft_model.c_str()
                                      : ("the model quantized to " + f.draft_quant).c_str(),
                f.engine.draft_min, f.engine.draft_max);
  }
  std::fflush(stdout);

  std::atomic<bool> finished{false};
  std::thread watcher(watch_signals, stop_signals, std::ref(finished), std::ref(server));
  server.run();
  finished = true;
  watcher.join();
  engine->shutdown(/*cancel_running=*/true);
  std::fprintf(stderr, "quanta serve: stopped\n");
  return 0;
}

}  // namespace quanta::cli
