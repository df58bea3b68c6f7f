// Byte-level BPE as llama.cpp's llm_tokenizer_bpe_session: each pre-tokenized word (in the
// byte alphabet) starts as UTF-8 characters; adjacent pairs are merged lowest merge rank
// first (ties: leftmost); finished symbols become tokens, or their single bytes if they are
// tokens themselves.
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace quanta::tokenizer {

namespace {

struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t n;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  std::string text;
  int32_t rank;
};

// Lowest rank on top, then the lowest left index (llama.cpp's llm_bigram_bpe::comparator).
struct BigramGreater {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  }
};

class BpeWord {
 public:
  BpeWord(const Tokenizer::Impl& t, const std::string& word) : t_(t), word_(word) {}

  // Appends the word's tokens to `out`.
  void tokenize(std::vector<int32_t>& out) {
    if (t_.pre_config.ignore_merges && t_.find(word_) != kNoToken) {
      symbols_.push_back({-1, -1, word_.data(), word_.size()});
    } else {
      split_characters();
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) add_bigram(i - 1, i);
    merge();
    for (const Symbol& sym : symbols_) {
      if (sym.n == 0) continue;
      const std::string_view text(sym.text, sym.n);
      const int32_t id = t_.find(text);
      if (id != kNoToken) {
        out.push_back(id);
        continue;
      }
      for (const char c : text) {  // llama.cpp looks the raw bytes up as tokens
        const int32_t byte_id = t_.find(std::string_view(&c, 1));
        if (byte_id != kNoToken) out.push_back(byte_id);
      }
    }
  }

 private:
  void split_characters() {
    int index = 0;
    size_t offset = 0;
    while (offset < word_.size()) {
      Symbol sym;
      sym.n = std::min(word_.size() - offset,
                       utf8_sequence_length(static_cast<uint8_t>(word_[offset])));
      sym.text = word_.data() + offset;
      offset += sym.n;
      sym.prev = index - 1;
      sym.next = offset == word_.size() ? -1 : index + 1;
      index++;
      symbols_.push_back(sym);
    }
  }

  void merge() {
    while (!queue_.empty()) {
      std::pop_heap(queue_.begin(), queue_.end(), BigramGreater());
      const Bigram bigram = std::move(queue_.back());
      queue_.pop_back();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      if (left.n == 0 || right.n == 0) continue;
      if (left.n + right.n != bigram.text.size() ||
          bigram.text.compare(0, left.n, left.text, left.n) != 0 ||
          bigram.text.compare(left.n, right.n, right.text, right.n) != 0) {
        continue;  // outdated
      }
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      add_bigram(left.prev, bigram.left);
      add_bigram(bigram.left, left.next);
    }
  }

  void add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    std::string left_text(symbols_[left].text, symbols_[left].n);
    std::string right_text(symbols_[right].text, symbols_[right].n);
    const int32_t rank = t_.bpe_rank(left_text, right_text);
    if (rank < 0) return;
    queue_.push_back({left, right, left_text + right_text, rank});
    std::push_heap(queue_.begin(), queue_.end(), BigramGreater());
  }

  const Tokenizer::Impl& t_;
  const std::string& word_;
  std::vector<Symbol> symbols_;
  std::vector<Bigram> queue_;  // a heap under BigramGreater
};

}  // namespace

void bpe_tokenize(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& word : t.pre->split(text)) BpeWord(t, word).tokenize(out);
}

}  // namespace quanta::tokenizer
