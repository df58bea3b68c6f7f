// Tokenizer::encode and Tokenizer::decode: llama.cpp's llama_vocab::impl::tokenize (special
// tokens partitioned out first, then SPM or BPE per raw-text fragment) and detokenize.
#include <cctype>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace quanta::tokenizer {

namespace {

// A piece of the input: raw text text[offset, offset + length), or one special token.
struct Fragment {
  int32_t token = kNoToken;  // kNoToken for raw text
  size_t offset = 0;
  size_t length = 0;
};

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Splits one raw fragment at every occurrence of `special` (llama.cpp's
// tokenizer_st_partition for one token), honouring the token's lstrip/rstrip attributes.
void split_at_token(std::string_view text, const Fragment& frag, int32_t id,
                    const std::string& special, uint32_t attr, std::vector<Fragment>& out) {
  size_t base = frag.offset;
  size_t length = frag.length;
  while (true) {
    const size_t match = text.substr(0, base + length).find(special, base);
    if (match == std::string_view::npos) {
      if (length > 0) out.push_back({kNoToken, base, length});
      return;
    }
    size_t left = match - base;
    if (attr & kAttrLstrip) {
      while (left > 0 && is_space(text[base + left - 1])) left--;
    }
    if (left > 0) out.push_back({kNoToken, base, left});
    out.push_back({id, 0, 0});
    const size_t right_end = base + length;
    base = match + special.size();
    if (base >= right_end) return;
    length = right_end - base;
    if (attr & kAttrRstrip) {
      while (length > 0 && is_space(text[base])) {
        base++;
        length--;
      }
    }
    if (length == 0) return;
  }
}

std::vector<Fragment> partition(const Tokenizer::Impl& t, std::string_view text,
                                bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (const int32_t id : t.special_tokens) {
    const uint32_t attr = t.attrs[id];
    // Control and unknown tokens only with parse_special; user-defined ones always.
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& special = t.texts[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
      } else {
        split_at_token(text, f, id, special, attr, next);
      }
    }
    frags.swap(next);
  }
  return frags;
}

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (const char c : text) {
    if (c == ' ') {
      out += "\xE2\x96\x81";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// llama.cpp's clean_up_tokenization_spaces passes, run on `text` in place exactly as its
// detokenize does on its output buffer.
void clean_spaces(std::string& text) {
  int32_t total = static_cast<int32_t>(text.size());
  // " ?", " !", " .", " ,": drop the space.
  const int32_t total1 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
    text[total++] = x;
  }
  // " ' ": drop the spaces around a lone apostrophe.
  const int32_t total2 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      total--;
      text[++i] = '\0';
    }
    text[total++] = x;
  }
  // " 's", " 'm", " 're", " 've": drop the space.
  const int32_t total3 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        total--;
      } else if (i + 2 < total3) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
      }
    }
    text[total++] = x;
  }
  text.resize(total);
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Impl& t = *impl_;
  const Vocab& v = t.vocab;
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition(t, text, parse_special);
  if (add_special && v.add_bos) out.push_back(v.bos_id);
  if (v.kind == VocabKind::kSpm) {
    bool prev_special = true;  // the first fragment gets the space prefix too
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      const std::string_view raw = text.substr(f.offset, f.length);
      std::string escaped = v.add_space_prefix && prev_special ? "\xE2\x96\x81" : "";
      escaped += escape_spaces(raw);
      spm_tokenize(t, escaped, out);
      prev_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
      } else {
        bpe_tokenize(t, text.substr(f.offset, f.length), out);
      }
    }
  }
  if (add_special && v.add_eos) out.push_back(v.eos_id);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool remove_special,
                              bool unparse_special) const {
  const Vocab& v = impl_->vocab;
  size_t begin = 0;
  size_t end = ids.size();
  bool remove_space = v.add_space_prefix;
  if (remove_special && v.add_bos && end > begin && ids[begin] == v.bos_id) {
    remove_space = false;  // as llama.cpp: a removed BOS keeps the next piece's space
    begin++;
  }
  if (remove_special && v.add_eos && end > begin && ids[end - 1] == v.eos_id) end--;
  std::string text;
  std::string piece;
  for (size_t i = begin; i < end; ++i) {
    piece.clear();
    token_to_piece(ids[i], piece, unparse_special);
    size_t skip = remove_space && !piece.empty() && piece[0] == ' ' ? 1 : 0;
    text.append(piece, skip, std::string::npos);
    remove_space = false;
  }
  if (impl_->pre_config.clean_spaces) clean_spaces(text);
  return text;
}

}  // namespace quanta::tokenizer
