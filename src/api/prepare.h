// Turns a parsed ApiRequest into the engine's GenerationRequest: renders chat messages with
// the chat template, tokenizes, checks token ids and the context length (400 naming the field)
// and picks max_tokens where the client gave none.
#pragma once

#include <cstdint>

#include "api/chat_template.h"
#include "api/protocol.h"

namespace quanta::tokenizer {
class Tokenizer;
}

namespace quanta::api {

// Fills r.gen.prompt and r.gen.max_tokens. Throws ApiError(400).
void prepare_generation(ApiRequest& r, const tokenizer::Tokenizer& tok, const ChatTemplate& tmpl,
                        int32_t n_ctx);

}  // namespace quanta::api
