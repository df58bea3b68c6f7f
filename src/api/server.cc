// HTTP routes, authentication, CORS, error bodies, SSE streaming, client-disconnect detection
// (streamed or not) and graceful draining, over cpp-httplib's thread pool.
#include "api/server.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "api/prepare.h"
#include "api/response.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kJson = "application/json";

// Constant-time in the candidate's content: every byte of the expected key is compared.
bool key_matches(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

uint64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

const char* status_message(int status) {
  switch (status) {
    case 404:
      return "Not found";
    case 405:
      return "Method not allowed";
    case 413:
      return "The request body is too large";
    default:
      return status < 500 ? "Bad request" : "Internal server error";
  }
}

// How often a handler waiting for the engine checks that its client is still connected.
constexpr std::chrono::milliseconds kProbeInterval{100};

// The numeric address and port of a socket's local (peer = false) or remote end, formatted as
// cpp-httplib formats Request::remote_addr / local_addr (getnameinfo, NI_NUMERICHOST).
bool socket_end(int fd, bool peer, int want_port, std::string& addr) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  sockaddr* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return false;
  int port = -1;
  if (ss.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  if (port != want_port) return false;
  char host[NI_MAXHOST];
  if (::getnameinfo(sa, len, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) != 0) return false;
  addr = host;
  return true;
}

// True when descriptor `fd` is the TCP connection `req` arrived on: the same local and peer
// address and port (unique among a host's open TCP connections).
bool is_connection(int fd, const httplib::Request& req) {
  std::string addr;
  return socket_end(fd, false, req.local_port, addr) && addr == req.local_addr &&
         socket_end(fd, true, req.remote_port, addr) && addr == req.remote_addr;
}

// The socket of the connection a handler serves, or -1. cpp-httplib 0.11 does not give it to
// handlers, so it is looked up among the process's descriptors (/proc/self/fd) by its address
// pair, trying first the one this thread found last: httplib serves each connection, all its
// requests and the response's content provider on one pool thread, and closes the socket only
// after them, so the descriptor stays this connection's while the handler and provider run.
int connection_socket(const httplib::Request& req) {
  thread_local int last = -1;
  if (req.remote_port < 0 || req.local_port < 0) return -1;
  if (last >= 0 && is_connection(last, req)) return last;
  last = -1;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    if (is_connection(static_cast<int>(fd), req)) {
      last = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  return last;
}

// True when the client has closed the connection (or it failed): hang-up, an error, the peer
// shutting down its sending side, or end-of-file on a read probe that consumes nothing. Bytes
// waiting (a pipelined next request) mean it is still there.
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) != 0) return true;
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// cpp-httplib 0.11 listens with a backlog of 5: a burst of new connections (a load test
// starting) overflows it and clients wait a SYN retransmission (1 s). Linux lets listen() be
// called again on the bound socket to raise it.
class HttpServer : public httplib::Server {
 public:
  void raise_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

// State of one streamed response, shared by httplib's content provider calls.
struct StreamState {
  std::shared_ptr<serve::RequestStream> stream;
  ResponseMeta meta;
  std::vector<StreamChoiceState> choices;
  std::vector<serve::ChoiceDelta> deltas;
  bool cancelled = false;  // a choice ended with kCancelled (engine shutdown)
  Clock::time_point last_write = Clock::now();
  int socket = -1;  // the client's connection (-1: unknown, found by failed writes only)
  Clock::time_point next_probe = Clock::now() + kProbeInterval;
};

}  // namespace

struct Server::Impl {
  serve::Engine& engine;
  const tokenizer::Tokenizer& tok;
  ChatTemplate chat_template;
  ServerOptions opts;
  HttpServer http;
  std::atomic<bool> draining{false};
  std::atomic<int32_t> in_flight{0};  // generation requests being submitted or not yet answered

  Impl(serve::Engine& e, const tokenizer::Tokenizer& t, ChatTemplate ct, ServerOptions o)
      : engine(e), tok(t), chat_template(std::move(ct)), opts(std::move(o)) {}

  void setup();
  void check_auth(const httplib::Request& req) const;
  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  std::shared_ptr<serve::RequestStream> submit(serve::GenerationRequest gen,
                                               httplib::Response& res);
  void respond_whole(const ResponseMeta& meta, serve::RequestStream& stream, int32_t n, int socket,
                     httplib::Response& res);
  void respond_stream(const ResponseMeta& meta, std::shared_ptr<serve::RequestStream> stream,
                      int32_t n, int socket, httplib::Response& res);
  bool stream_step(StreamState& st, httplib::DataSink& sink);
  void models(httplib::Response& res) const;

  // Runs a route with ApiError -> error body; every error response is counted in the metrics.
  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        res.status = e.status;
        res.set_content(error_body(e), kJson);
        engine.record_error_response(e.status);
      } catch (const std::exception& e) {
        res.status = 500;
        engine.record_error_response(500);
        res.set_content(error_body(e.what(), "server_error", ""), kJson);
      }
    };
  }
};

void Server::Impl::check_auth(const httplib::Request& req) const {
  if (opts.api_key.empty()) return;
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  const std::string given =
      header.compare(0, prefix.size(), prefix) == 0 ? header.substr(prefix.size()) : std::string();
  if (!key_matches(given, opts.api_key)) {
    throw ApiError(401,
                   header.empty() ? "You didn't provide an API key. Provide it in the "
                                    "Authorization header (Authorization: Bearer YOUR_KEY)."
                                  : "Incorrect API key provided.",
                   "", "invalid_request_error");
  }
}

std::shared_ptr<serve::RequestStream> Server::Impl::submit(serve::GenerationRequest gen,
                                                           httplib::Response& res) {
  if (draining) throw ApiError(503, "The server is shutting down.", "", "server_error");
  try {
    return engine.submit(std::move(gen));
  } catch (const serve::QueueFull& q) {
    const double wait = std::isfinite(q.retry_after_seconds) ? q.retry_after_seconds : 1.0;
    const int secs = static_cast<int>(std::clamp(std::ceil(wait), 1.0, 60.0));
    res.set_header("Retry-After", std::to_string(secs));
    throw ApiError(429, "The server has too many requests waiting; retry later.", "",
                   "rate_limit_exceeded");
  } catch (const Error& e) {
    if (draining) throw ApiError(503, "The server is shutting down.", "", "server_error");
    throw ApiError(400, e.what());
  }
}

void Server::Impl::generate(Endpoint endpoint, const httplib::Request& req,
                            httplib::Response& res) {
  check_auth(req);
  ApiRequest r = parse_request(endpoint, req.body, random_seed());
  prepare_generation(r, tok, chat_template, engine.n_ctx());
  ResponseMeta meta;
  meta.endpoint = endpoint;
  meta.id = new_response_id(endpoint);
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = opts.model_id;
  meta.logprobs = r.logprobs;
  meta.include_usage = r.include_usage;
  const int32_t n = r.gen.n;
  const int socket = connection_socket(req);
  // Counted before submit (which checks `draining`): a shutdown starting now either sees
  // this request in flight and drains it, or this request sees the shutdown and gets a 503.
  // Counted after submit, a request accepted just as shutdown began was dropped unanswered.
  in_flight.fetch_add(1);
  struct Done {
    std::atomic<int32_t>* c;
    ~Done() {
      if (c != nullptr) c->fetch_sub(1);
    }
  } done{&in_flight};
  std::shared_ptr<serve::RequestStream> stream = submit(std::move(r.gen), res);
  if (r.stream) {
    done.c = nullptr;  // in_flight drops in the stream's releaser
    respond_stream(meta, std::move(stream), n, socket, res);
    return;
  }
  respond_whole(meta, *stream, n, socket, res);
}

// Collects the whole response, checking every kProbeInterval that the client is still there:
// one that left has its request cancelled (the engine frees its blocks at its next step).
void Server::Impl::respond_whole(const ResponseMeta& meta, serve::RequestStream& stream, int32_t n,
                                 int socket, httplib::Response& res) {
  std::vector<ChoiceResult> choices(static_cast<size_t>(n));
  std::vector<serve::ChoiceDelta> deltas;
  bool cancelled = false;
  Clock::time_point next_probe = Clock::now() + kProbeInterval;
  while (stream.next(deltas, kProbeInterval) || !deltas.empty()) {
    if (socket >= 0 && Clock::now() >= next_probe) {
      next_probe = Clock::now() + kProbeInterval;
      if (peer_closed(socket)) {
        stream.cancel();
        res.status = 499;  // nginx's "client closed request"; nobody is left to read it
        res.set_content(
            error_body("The client closed the connection.", "invalid_request_error", ""), kJson);
        return;
      }
    }
    for (serve::ChoiceDelta& d : deltas) {
      ChoiceResult& c = choices.at(static_cast<size_t>(d.index));
      c.text += d.text;
      for (serve::TokenLogprob& lp : d.logprobs) c.logprobs.push_back(std::move(lp));
      if (d.finish != FinishReason::kNone) c.finish = d.finish;
      cancelled |= d.finish == FinishReason::kCancelled;
    }
    deltas.clear();
  }
  if (cancelled) {
    throw ApiError(503, "The request was cancelled: the server is shutting down.", "",
                   "server_error");
  }
  res.set_content(response_body(meta, choices, stream.usage()), kJson);
}

// One provider call: waits briefly for deltas and writes their events. Returns false to abort
// the connection (client gone: the request is cancelled).
bool Server::Impl::stream_step(StreamState& st, httplib::DataSink& sink) {
  if (st.socket >= 0 && Clock::now() >= st.next_probe) {
    st.next_probe = Clock::now() + kProbeInterval;
    if (peer_closed(st.socket)) {
      st.stream->cancel();
      return false;
    }
  }
  st.deltas.clear();
  const bool more = st.stream->next(st.deltas, opts.poll);
  std::string out;
  for (const serve::ChoiceDelta& d : st.deltas) {
    if (d.finish == FinishReason::kCancelled) {
      st.cancelled = true;
      continue;
    }
    out += stream_events(st.meta, d, st.choices.at(static_cast<size_t>(d.index)));
  }
  if (!more) {
    if (st.cancelled) {
      out += stream_error_event(ApiError(503,
                                         "The request was cancelled: the server is "
                                         "shutting down.",
                                         "", "server_error"));
    } else if (st.meta.include_usage) {
      out += stream_usage_event(st.meta, st.stream->usage());
    }
    out += kStreamDone;
  } else if (out.empty() && Clock::now() - st.last_write > opts.keepalive) {
    out = ": keep-alive\n\n";  // an SSE comment; also finds clients that left while queued
  }
  if (!out.empty()) {
    if (!sink.is_writable() || !sink.write(out.data(), out.size())) {
      st.stream->cancel();
      return false;
    }
    st.last_write = Clock::now();
  }
  if (!more) sink.done();
  return true;
}

void Server::Impl::respond_stream(const ResponseMeta& meta,
                                  std::shared_ptr<serve::RequestStream> stream, int32_t n,
                                  int socket, httplib::Response& res) {
  auto st = std::make_shared<StreamState>();
  st->stream = std::move(stream);
  st->socket = socket;
  st->meta = meta;
  st->choices.resize(static_cast<size_t>(n));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st](size_t, httplib::DataSink& sink) { return stream_step(*st, sink); },
      [this, st](bool success) {
        if (!success || !st->stream->done()) st->stream->cancel();
        in_flight.fetch_sub(1);
      });
}

void Server::Impl::models(httplib::Response& res) const {
  const nlohmann::json model = {{"id", opts.model_id},
                                {"object", "model"},
                                {"created", static_cast<int64_t>(std::time(nullptr))},
                                {"owned_by", "quanta"},
                                {"max_model_len", engine.n_ctx()}};
  res.set_content(nlohmann::json{{"object", "list"}, {"data", {model}}}.dump(), kJson);
}

void Server::Impl::setup() {
  http.new_task_queue = [n = opts.http_threads] {
    return new httplib::ThreadPool(static_cast<size_t>(std::max(2, n)));
  };
  http.set_payload_max_length(opts.max_body_bytes);
  http.set_keep_alive_timeout(2);  // idle connections also delay shutdown by up to this
  if (!opts.cors_origin.empty()) {
    http.set_default_headers(
        {{"Access-Control-Allow-Origin", opts.cors_origin}, {"Vary", "Origin"}});
    http.Options(".*", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "86400");
    });
  }
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route's own error body
    if (res.status >= 400) engine.record_error_response(res.status);
    std::string message = status_message(res.status);
    if (res.status == 404) message = "Unknown endpoint: " + req.method + " " + req.path;
    if (res.status == 413) {
      message = strformat("The request body is larger than %zu bytes", opts.max_body_bytes);
    }
    res.set_content(
        error_body(message, res.status < 500 ? "invalid_request_error" : "server_error", ""),
        kJson);
  });
  http.Post("/v1/completions", guarded([this](const auto& req, auto& res) {
              generate(Endpoint::kCompletions, req, res);
            }));
  http.Post("/v1/chat/completions",
            guarded([this](const auto& req, auto& res) { generate(Endpoint::kChat, req, res); }));
  http.Get("/v1/models", guarded([this](const auto& req, auto& res) {
             check_auth(req);
             models(res);
           }));
  http.Get("/metrics", guarded([this](const auto& req, auto& res) {
             check_auth(req);
             res.set_content(engine.metrics_text(), "text/plain; version=0.0.4");
           }));
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = draining ? 503 : 200;
    res.set_content(draining ? R"({"status":"shutting down"})" : R"({"status":"ok"})", kJson);
  });
}

Server::Server(serve::Engine& engine, const tokenizer::Tokenizer& tok, ChatTemplate chat_template,
               ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, tok, std::move(chat_template), std::move(options))) {
  impl_->setup();
}

Server::~Server() = default;

int32_t Server::bind() {
  const ServerOptions& o = impl_->opts;
  if (o.port == 0) {
    const int port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) fail("cannot listen on %s (any port)", o.host.c_str());
    impl_->http.raise_backlog(512);
    return port;
  }
  if (!impl_->http.bind_to_port(o.host, o.port)) {
    fail("cannot listen on %s:%d (address in use or not available)", o.host.c_str(), o.port);
  }
  impl_->http.raise_backlog(512);
  return o.port;
}

void Server::run() {
  impl_->http.listen_after_bind();
}

void Server::shutdown() {
  Impl& s = *impl_;
  s.draining = true;
  const Clock::time_point deadline = Clock::now() + s.opts.drain_timeout;
  while (s.in_flight > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.engine.shutdown(/*cancel_running=*/s.in_flight > 0);
  // Cancelled streams still send their error event and [DONE].
  const Clock::time_point last = Clock::now() + std::chrono::seconds(5);
  while (s.in_flight > 0 && Clock::now() < last) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.http.stop();
}

}  // namespace quanta::api
