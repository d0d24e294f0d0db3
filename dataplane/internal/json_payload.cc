#include "dataplane/internal/json_payload.h"

#include <array>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "dataplane/internal/json_names.h"
#include "simdjson.h"

namespace vigil::dataplane::internal {
namespace {

namespace dom = simdjson::dom;

// Deeper nesting is rejected so a hostile document cannot exhaust the worker's stack;
// the message then stays text.
constexpr size_t kMaxDepth = 32;
// First size of the per-thread padded buffer and parser; both grow for larger messages.
constexpr size_t kInitialCapacity = 64 * 1024;

// The DOM parser, not On-Demand: libsimdjson picks the kernel for both of its stages at
// run time (icelake or haswell where the CPU has them), while On-Demand code is compiled
// into this file with the kernel that the build flags allow, which is `fallback` under
// DPDK's -march=corei7.
struct ThreadState {
  ThreadState() {
    buffer.resize(kInitialCapacity + simdjson::SIMDJSON_PADDING);
    // If this allocation fails, parse() allocates again and reports the failure.
    const simdjson::error_code error = parser.allocate(kInitialCapacity);
    (void)error;
  }
  dom::parser parser;
  std::vector<char> buffer;
};

ThreadState& threadState() {
  thread_local ThreadState state;
  return state;
}

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Characters of a JSON number: digits, sign, decimal point and exponent.
constexpr std::array<bool, 256> kNumberChars = [] {
  std::array<bool, 256> table{};
  for (const char c : std::string_view("0123456789+-.eE")) {
    table[static_cast<unsigned char>(c)] = true;
  }
  return table;
}();

bool isNumberChar(char c) { return kNumberChars[static_cast<unsigned char>(c)]; }

// Walks the parsed document (the tape) and, in step with it, the structural indexes of
// simdjson's stage 1: the offsets of every '{', '}', '[', ']', ':', ',' and of the first
// byte of every scalar, in document order. The offsets give each name and value its
// place in the caller's text, so values without escapes are views into it and numbers
// keep their exact text. The document is valid JSON once parse() succeeded, so the two
// sequences agree. Every step still checks its bounds and fails instead of reading past
// the indexes.
class Flattener {
 public:
  Flattener(std::string_view text, const char* copy, const uint32_t* structurals,
            size_t structural_count, Event& event)
      : text_(text),
        copy_(copy),
        structurals_(structurals),
        structural_count_(structural_count),
        event_(event) {}

  // Flattens the object whose '{' is the next structural.
  bool flattenObject(dom::object object, std::string_view prefix, size_t depth) {
    if (depth > kMaxDepth) return false;
    ++next_;  // '{'
    bool empty = true;
    for (const dom::key_value_pair member : object) {
      empty = false;
      const std::string_view key = memberKey(member.key);
      if (key.data() == nullptr) return false;
      next_ += 2;  // the key and ':'
      const std::string_view name = joinName(prefix, key);
      if (name.data() == nullptr) return false;
      if (!flattenValue(member.value, name, depth)) return false;
      ++next_;  // ',' or '}'
    }
    if (empty) ++next_;  // '}'
    return next_ <= structural_count_;
  }

  // True when every structural was visited: the text held one object and nothing else.
  bool consumedAll() const { return next_ == structural_count_; }

 private:
  // Offset of the structural `ahead` places after the current one, or nullopt.
  std::optional<size_t> structuralAt(size_t ahead) const {
    if (next_ + ahead >= structural_count_) return std::nullopt;
    return structurals_[next_ + ahead];
  }

  // Maps a view into the padded copy to the same bytes of the caller's text.
  std::string_view inText(size_t offset, size_t len) const { return text_.substr(offset, len); }

  // The raw content of the string whose opening quote is the current structural: it
  // ends at the last quote before the next structural. Empty data() on a mismatch.
  std::string_view rawString() const {
    const auto open = structuralAt(0);
    const auto after = structuralAt(1);
    if (!open || !after || copy_[*open] != '"') return {};
    size_t close = *after;
    while (close > *open + 1 && isJsonSpace(copy_[close - 1])) --close;
    if (close <= *open + 1 || copy_[close - 1] != '"') return {};
    return inText(*open + 1, close - 1 - (*open + 1));
  }

  static bool hasEscape(std::string_view raw) {
    return std::memchr(raw.data(), '\\', raw.size()) != nullptr;
  }

  // `decoded` is the key as the tape has it, in the parser's string buffer.
  std::string_view memberKey(std::string_view decoded) {
    const std::string_view raw = rawString();
    if (raw.data() == nullptr) return {};
    if (!hasEscape(raw)) return raw;
    return copyToArena(decoded);
  }

  std::string_view copyToArena(std::string_view text) {
    return internal::copyToArena(event_, text);
  }
  std::string_view joinName(std::string_view prefix, std::string_view key) {
    return internal::joinName(event_, prefix, key);
  }
  std::string_view indexName(std::string_view prefix, size_t index) {
    return internal::indexName(event_, prefix, index);
  }

  // Flattens the array whose '[' is the next structural.
  bool flattenArray(dom::array array, std::string_view prefix, size_t depth) {
    if (depth > kMaxDepth) return false;
    ++next_;  // '['
    size_t index = 0;
    for (const dom::element element : array) {
      const std::string_view name = indexName(prefix, index++);
      if (name.data() == nullptr) return false;
      if (!flattenValue(element, name, depth)) return false;
      ++next_;  // ',' or ']'
    }
    if (index == 0) ++next_;  // ']'
    return next_ <= structural_count_;
  }

  // Flattens the value whose first structural is the current one, and leaves the walk
  // on the structural after it.
  bool flattenValue(dom::element value, std::string_view name, size_t depth) {
    switch (value.type()) {
      case dom::element_type::OBJECT:
        return flattenObject(value.get_object().value_unsafe(), name, depth + 1);
      case dom::element_type::ARRAY:
        return flattenArray(value.get_array().value_unsafe(), name, depth + 1);
      case dom::element_type::STRING:
        return addString(value, name);
      case dom::element_type::INT64:
      case dom::element_type::UINT64:
      case dom::element_type::DOUBLE:
        return addNumber(name);
      case dom::element_type::BOOL:
        ++next_;
        event_.addField(name, value.get_bool().value_unsafe() ? "true" : "false");
        return true;
      case dom::element_type::NULL_VALUE:
        ++next_;
        return true;
    }
    return false;
  }

  bool addString(dom::element value, std::string_view name) {
    const std::string_view raw = rawString();
    if (raw.data() == nullptr) return false;
    ++next_;
    if (!hasEscape(raw)) {
      event_.addField(name, raw);
      return true;
    }
    const std::string_view copy = copyToArena(value.get_string().value_unsafe());
    if (copy.data() == nullptr) return false;
    event_.addField(name, copy);
    return true;
  }

  // Keeps the number exactly as written ("1521911799.739898", "1e3"); parse() checked
  // that it is one.
  bool addNumber(std::string_view name) {
    const auto start = structuralAt(0);
    const auto after = structuralAt(1);
    if (!start || !after) return false;
    size_t len = 0;
    while (*start + len < *after && isNumberChar(copy_[*start + len])) ++len;
    if (len == 0) return false;
    ++next_;
    event_.addField(name, inText(*start, len));
    return true;
  }

  std::string_view text_;
  const char* copy_;
  const uint32_t* structurals_;
  size_t structural_count_;
  size_t next_ = 0;  // index of the current structural
  Event& event_;
};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the four hex digits of a \u escape at `p` (which points at the backslash).
// Returns -1 when the escape is incomplete or not hex.
int escapeCodeUnit(const char* p, const char* end) {
  if (end - p < 6 || p[1] != 'u') return -1;
  int value = 0;
  for (int i = 2; i < 6; ++i) {
    const int digit = hexValue(p[i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

// Rewrites every \u escape of an unpaired UTF-16 surrogate in [begin, end) to \uFFFD,
// which has the same length, so structural offsets stay valid. simdjson rejects the
// whole document over such an escape; JSON from Windows and JavaScript producers carries
// them when a string was cut between the two halves of a pair. Returns true when it
// rewrote at least one.
bool replaceLoneSurrogates(char* begin, char* end) {
  bool replaced = false;
  for (char* p = begin; p < end; ++p) {
    if (*p != '\\') continue;
    if (end - p < 2) break;
    if (p[1] != 'u') {
      ++p;  // skip the escaped character, which may itself be a backslash
      continue;
    }
    const int unit = escapeCodeUnit(p, end);
    if (unit < 0) continue;  // malformed escape: leave it for the parser to reject
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      const int low = escapeCodeUnit(p + 6, end);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        p += 11;  // a valid pair
        continue;
      }
    } else if (unit < 0xDC00 || unit > 0xDFFF) {
      p += 5;
      continue;
    }
    std::memcpy(p + 2, "FFFD", 4);
    replaced = true;
    p += 5;
  }
  return replaced;
}

}  // namespace

std::string_view jsonCandidate(std::string_view msg) {
  constexpr std::string_view kCee = "@cee:";
  if (msg.substr(0, kCee.size()) == kCee) {
    msg.remove_prefix(kCee.size());
    while (!msg.empty() && msg.front() == ' ') msg.remove_prefix(1);
  }
  if (msg.empty() || msg.front() != '{') return {};
  return msg;
}

bool flattenJson(std::string_view text, Event& event) {
  ThreadState& state = threadState();
  const size_t needed = text.size() + simdjson::SIMDJSON_PADDING;
  if (state.buffer.size() < needed) state.buffer.resize(needed * 2);
  std::memcpy(state.buffer.data(), text.data(), text.size());
  std::memset(state.buffer.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);

  // Remember where the arena and the field list stood, to undo a partial flatten.
  char* const arena_mark = event.arena.alloc(0);
  const size_t field_mark = event.totalFields();
  const uint32_t flags_mark = event.flags;

  bool ok = false;
  dom::object root;
  simdjson::error_code error =
      state.parser.parse(state.buffer.data(), text.size(), false).get(root);
  if (error == simdjson::STRING_ERROR &&
      replaceLoneSurrogates(state.buffer.data(), state.buffer.data() + text.size())) {
    // Strings with escapes are decoded from the parsed copy, so the repaired escapes
    // come out as U+FFFD; the event is flagged as for any invalid UTF-8.
    error = state.parser.parse(state.buffer.data(), text.size(), false).get(root);
    if (error == simdjson::SUCCESS) event.flags |= kFlagInvalidUtf8;
  }
  if (error == simdjson::NUMBER_ERROR || error == simdjson::NUMBER_OUT_OF_RANGE) {
    // The DOM parser rejects the whole document over a number it cannot store, such as an
    // integer beyond 64 bits. On-Demand keeps such a number as its text, as every other
    // number is kept, and still rejects a number that is no valid JSON.
    return flattenJsonOnDemand(text, event);
  }
  if (error == simdjson::SUCCESS) {
    const auto& stage1 = *state.parser.implementation;
    Flattener flattener(text, state.buffer.data(), stage1.structural_indexes.get(),
                        stage1.n_structural_indexes, event);
    // parse() rejects a second document after the object, and consumedAll() confirms
    // that the walk and the structural indexes stayed in step.
    ok = flattener.flattenObject(root, {}, 1) && flattener.consumedAll();
  }
  if (!ok) {
    event.arena.shrinkLast(arena_mark, 0);
    event.truncateFields(field_mark);
    event.flags = flags_mark;
    return false;
  }
  event.flags |= kFlagJsonPayload;
  return true;
}

}  // namespace vigil::dataplane::internal
