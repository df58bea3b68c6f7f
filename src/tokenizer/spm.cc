// SentencePiece-style tokenization as llama.cpp's llm_tokenizer_spm_session: the text is
// split into UTF-8 characters, adjacent pairs that form a token are merged best score first
// (ties: leftmost), and symbols that are not tokens are resegmented or fall back to bytes.
#include <queue>
#include <unordered_map>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace quanta::tokenizer {

namespace {

struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t n;  // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score on top, then the lowest left index (llama.cpp's llm_bigram_spm::comparator).
struct BigramLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

class SpmSession {
 public:
  explicit SpmSession(const Tokenizer::Impl& t) : t_(t) {}

  void tokenize(const std::string& text, std::vector<int32_t>& out) {
    int index = 0;
    size_t offs = 0;
    while (offs < text.size()) {
      Symbol sym;
      const size_t len = utf8_sequence_length(static_cast<uint8_t>(text[offs]));
      sym.text = text.data() + offs;
      sym.n = std::min(len, text.size() - offs);
      offs += sym.n;
      sym.prev = index - 1;
      sym.next = offs == text.size() ? -1 : index + 1;
      index++;
      symbols_.push_back(sym);
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      // Stale entry: one side was merged since it was queued.
      if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }

    if (symbols_.empty()) return;
    for (int i = 0; i != -1; i = symbols_[i].next) resegment(symbols_[i], out);
  }

 private:
  void try_add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    std::string text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
    const int32_t id = t_.find(text);
    if (id == kNoToken) return;
    queue_.push({left, right, t_.scores[id], text.size()});
    rev_merge_[std::move(text)] = {left, right};
  }

  void resegment(const Symbol& symbol, std::vector<int32_t>& out) {
    const std::string_view text(symbol.text, symbol.n);
    const int32_t id = t_.find(text);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
    const auto it = rev_merge_.find(std::string(text));
    if (it == rev_merge_.end()) {
      for (const char c : text) {
        const int32_t byte_id = t_.byte_token(static_cast<uint8_t>(c));
        if (byte_id != kNoToken) out.push_back(byte_id);
      }
      return;
    }
    const auto [l, r] = it->second;
    resegment(symbols_[l], out);
    resegment(symbols_[r], out);
  }

  const Tokenizer::Impl& t_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue_;
  std::unordered_map<std::string, std::pair<int, int>> rev_merge_;
};

}  // namespace

void spm_tokenize(const Tokenizer::Impl& t, const std::string& text, std::vector<int32_t>& out) {
  SpmSession(t).tokenize(text, out);
}

}  // namespace quanta::tokenizer
