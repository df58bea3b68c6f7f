// Prompt tokenization and context checks shared by both generation endpoints.
#include "api/prepare.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

// NOTE: like llama-server, a rendered chat prompt is tokenized with special-token parsing and
// the vocabulary's own BOS; a template's leading bos_token text is dropped when the tokenizer
// adds BOS itself, so the prompt never starts with two BOS tokens.
std::vector<int32_t> chat_tokens(const ApiRequest& r, const tokenizer::Tokenizer& tok,
                                 const ChatTemplate& tmpl) {
  std::string text = render_chat(tmpl, r.messages);
  if (tok.add_bos() && !tmpl.bos.empty() && text.compare(0, tmpl.bos.size(), tmpl.bos) == 0) {
    text.erase(0, tmpl.bos.size());
  }
  return tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
}

}  // namespace

void prepare_generation(ApiRequest& r, const tokenizer::Tokenizer& tok, const ChatTemplate& tmpl,
                        int32_t n_ctx) {
  const bool chat = r.endpoint == Endpoint::kChat;
  const char* prompt_param = chat ? "messages" : "prompt";
  if (chat) {
    r.gen.prompt = chat_tokens(r, tok, tmpl);
  } else if (r.prompt_is_tokens) {
    for (int32_t id : r.prompt_tokens) {
      if (id >= tok.n_vocab()) {
        throw ApiError(400,
                       strformat("token id %d in 'prompt' is outside the vocabulary (%d tokens)",
                                 id, tok.n_vocab()),
                       "prompt");
      }
    }
    r.gen.prompt = r.prompt_tokens;
  } else {
    r.gen.prompt = tok.encode(r.prompt_text, /*add_special=*/true);
  }
  if (r.gen.prompt.empty())
    throw ApiError(400, "the prompt is empty after tokenization", prompt_param);
  const int64_t n_prompt = static_cast<int64_t>(r.gen.prompt.size());
  if (n_prompt >= n_ctx) {
    throw ApiError(400,
                   strformat("This model's maximum context length is %d tokens. However, your "
                             "prompt has %lld tokens, leaving no room for a completion.",
                             n_ctx, static_cast<long long>(n_prompt)),
                   prompt_param);
  }
  const int64_t max_tokens = r.max_tokens ? *r.max_tokens : n_ctx - n_prompt;
  if (n_prompt + max_tokens > n_ctx) {
    throw ApiError(400,
                   strformat("This model's maximum context length is %d tokens. However, you "
                             "requested %lld tokens (%lld in the %s, %lld in the completion). "
                             "Please reduce the length of the %s or completion.",
                             n_ctx, static_cast<long long>(n_prompt + max_tokens),
                             static_cast<long long>(n_prompt), prompt_param,
                             static_cast<long long>(max_tokens), prompt_param),
                   "max_tokens");
  }
  r.gen.max_tokens = static_cast<int32_t>(max_tokens);
}

}  // namespace quanta::api
