// Tokenizer: building the lookup tables from a Vocab (token attributes, special tokens and
// end-of-generation ids as llama.cpp's llama_vocab::load derives them) and token_to_piece.
// Encoding and decoding are in tokenizer_encode.cc.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace quanta::tokenizer {

namespace {

uint32_t attr_of_type(TokenType type) {
  switch (type) {
    case TokenType::kUnknown:
      return kAttrUnknown;
    case TokenType::kUnused:
      return kAttrUnused;
    case TokenType::kNormal:
      return kAttrNormal;
    case TokenType::kControl:
      return kAttrControl;
    case TokenType::kUserDefined:
      return kAttrUserDefined;
    case TokenType::kByte:
      return kAttrByte;
    case TokenType::kUndefined:
      return kAttrUndefined;
  }
  return kAttrUndefined;
}

bool text_is_one_of(const std::string& text, std::initializer_list<const char*> list) {
  for (const char* s : list) {
    if (text == s) return true;
  }
  return false;
}

// Texts llama.cpp (Feb 2025) treats as end of turn / end of generation.
bool is_eot_text(const std::string& t) {
  return text_is_one_of(t, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                            "<EOT>", "<｜end▁of▁sentence｜>"});
}
bool is_eog_text(const std::string& t) {
  return text_is_one_of(t, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                            "<|eom_id|>", "<EOT>"});
}

// The byte a "<0xXX>" token stands for, or -1.
int parse_byte_token(const std::string& text) {
  if (text.size() < 5) return -1;
  const std::string hex = text.substr(3, 2);
  char* end = nullptr;
  const long v = std::strtol(hex.c_str(), &end, 16);
  return end == hex.c_str() ? -1 : static_cast<int>(v & 0xFF);
}

// llama_decode_text: byte-alphabet code points back to bytes.
std::string decode_byte_alphabet(const std::string& text) {
  std::string out;
  for (const uint32_t cpt : utf8_to_code_points(text)) {
    const int byte = unicode_to_byte(cpt);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
      continue;
    }
    std::string utf8;
    append_utf8(cpt, utf8);
    out += "[UNK_BYTE_0x";
    for (const char c : utf8) out += quanta::strformat("%02x", static_cast<uint8_t>(c));
    out += text + "]";
  }
  return out;
}

std::string unescape_spaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out.push_back(' ');
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

int32_t Tokenizer::Impl::bpe_rank(const std::string& left, const std::string& right) const {
  const auto it = bpe_ranks.find({left, right});
  return it == bpe_ranks.end() ? -1 : it->second;
}

int32_t Tokenizer::Impl::byte_token(uint8_t byte) const {
  const int32_t id = find(quanta::strformat("<0x%02X>", byte));
  if (id != kNoToken) return id;
  const char c = static_cast<char>(byte);
  const int32_t single = find(std::string_view(&c, 1));
  return single != kNoToken ? single : vocab.unk_id;
}

namespace {

void build_token_tables(Tokenizer::Impl& t) {
  const Vocab& v = t.vocab;
  const size_t n = v.tokens.size();
  t.texts.resize(n);
  t.scores.assign(n, 0.0f);
  t.attrs.assign(n, kAttrNormal);
  t.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    t.texts[i] = v.tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : v.tokens[i];
    if (!v.scores.empty()) t.scores[i] = v.scores[i];
    if (!v.types.empty()) t.attrs[i] = attr_of_type(v.types[i]);
    const auto [it, inserted] = t.token_to_id.emplace(t.texts[i], static_cast<int32_t>(i));
    if (!inserted) {
      quanta::fail("tokenizer.ggml.tokens: duplicate token '%s' at ids %d and %zu",
                   t.texts[i].c_str(), it->second, i);
    }
  }
  if (v.kind == VocabKind::kBpe) {
    t.bpe_ranks.reserve(v.merges.size());
    for (size_t i = 0; i < v.merges.size(); ++i) {
      const std::string& m = v.merges[i];
      const size_t space = m.find(' ', 1);  // validated: present, not last
      t.bpe_ranks.emplace(std::make_pair(m.substr(0, space), m.substr(space + 1)),
                          static_cast<int32_t>(i));
    }
  }
}

// EOT/EOM detection, control-looking tokens forced to control, and the EOG set.
void build_special_ids(Tokenizer::Impl& t) {
  const int32_t n = t.vocab.n_vocab();
  t.eot_id = t.vocab.eot_id;
  t.eom_id = t.vocab.eom_id;
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = t.texts[id];
    if (t.eot_id == kNoToken && is_eot_text(text)) {
      t.eot_id = id;
      t.attrs[id] |= kAttrControl;
    }
    if (t.eom_id == kNoToken && text == "<|eom_id|>") {
      t.eom_id = id;
      t.attrs[id] |= kAttrControl;
    }
    if (is_eog_text(text)) {
      t.eog.insert(id);
      t.attrs[id] |= kAttrControl;
    }
  }
  for (const int32_t id : {t.vocab.eos_id, t.eot_id, t.eom_id}) {
    if (id != kNoToken) t.eog.insert(id);
  }
  for (int32_t id = 0; id < n; ++id) {
    if (t.attrs[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      t.special_tokens.push_back(id);
    }
  }
  std::stable_sort(t.special_tokens.begin(), t.special_tokens.end(),
                   [&](int32_t a, int32_t b) { return t.texts[a].size() > t.texts[b].size(); });
}

// llama.cpp's per-model attribute quirk for Phi-3 (keyed on general.name): whitespace after
// its special tokens is stripped, except after <unk>, <s> and <|endoftext|>.
void apply_model_quirks(Tokenizer::Impl& t) {
  std::string name = t.vocab.name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<uint8_t>(c))); });
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (const int32_t id : t.special_tokens) t.attrs[id] |= kAttrRstrip;
  const auto set_rstrip = [&](const char* text, bool on) {
    const int32_t id = t.find(text);
    if (id == kNoToken) return;
    if (on) {
      t.attrs[id] |= kAttrRstrip;
    } else {
      t.attrs[id] &= ~kAttrRstrip;
    }
  };
  set_rstrip("</s>", true);
  for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) set_rstrip(text, false);
}

// token_to_piece(id, special=true) of llama.cpp, for the cache.
std::string compute_piece(const Tokenizer::Impl& t, int32_t id) {
  const uint32_t attr = t.attrs[id];
  const std::string& text = t.texts[id];
  if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return text;
  if (attr & kAttrNormal) {
    return t.vocab.kind == VocabKind::kSpm ? unescape_spaces(text) : decode_byte_alphabet(text);
  }
  if (attr & kAttrByte) {
    const int byte = parse_byte_token(text);
    return byte < 0 ? std::string() : std::string(1, static_cast<char>(byte));
  }
  return std::string();  // unused / undefined tokens render as nothing
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : impl_(std::make_unique<Impl>()) {
  validate_vocab(vocab);
  Impl& t = *impl_;
  t.vocab = std::move(vocab);
  if (t.vocab.kind == VocabKind::kBpe) {
    t.pre_config = pre_tokenizer_config(t.vocab.pre);
    t.pre = std::make_unique<PreTokenizer>(t.pre_config.type);
  } else {
    t.pre_config.clean_spaces = false;
  }
  build_token_tables(t);
  build_special_ids(t);
  t.pieces.resize(t.texts.size());
  for (int32_t id = 0; id < t.vocab.n_vocab(); ++id) t.pieces[id] = compute_piece(t, id);
  apply_model_quirks(t);
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::token_to_piece(int32_t id, std::string& out, bool special) const {
  if (id < 0 || id >= n_vocab()) quanta::fail("token id %d is out of range [0, %d)", id, n_vocab());
  if (!special && (impl_->attrs[id] & (kAttrUnknown | kAttrControl))) return;
  out += impl_->pieces[id];
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  std::string out;
  token_to_piece(id, out, special);
  return out;
}

int32_t Tokenizer::bos() const {
  return impl_->vocab.bos_id;
}
int32_t Tokenizer::eos() const {
  return impl_->vocab.eos_id;
}
int32_t Tokenizer::eot() const {
  return impl_->eot_id;
}
bool Tokenizer::is_eog(int32_t id) const {
  return id != kNoToken && impl_->eog.count(id) > 0;
}
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_vocab() && (impl_->attrs[id] & (kAttrUnknown | kAttrControl));
}
bool Tokenizer::add_bos() const {
  return impl_->vocab.add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->vocab.add_eos;
}
int32_t Tokenizer::n_vocab() const {
  return impl_->vocab.n_vocab();
}
const Vocab& Tokenizer::vocab() const {
  return impl_->vocab;
}

}  // namespace quanta::tokenizer
