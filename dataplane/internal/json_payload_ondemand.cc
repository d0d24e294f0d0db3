// The On-Demand flattener that flattenJson() falls back to for documents simdjson's DOM
// parser rejects over a number (an integer beyond 64 bits, for one), which On-Demand
// reads as raw text. It is slower because this file gets the kernel the build
// flags allow (`fallback` under DPDK's -march=corei7), so it serves only that case.
#include "dataplane/internal/json_payload.h"

#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "dataplane/internal/json_names.h"
#include "simdjson.h"

namespace vigil::dataplane::internal {
namespace {

namespace od = simdjson::ondemand;

// Deeper nesting is rejected so a hostile document cannot exhaust the worker's stack;
// the message then stays text.
constexpr size_t kMaxDepth = 32;
// First size of the per-thread padded buffer and parser; both grow for larger messages.
constexpr size_t kInitialCapacity = 64 * 1024;

struct ThreadState {
  ThreadState() {
    buffer.resize(kInitialCapacity + simdjson::SIMDJSON_PADDING);
    // If this allocation fails, iterate() allocates again and reports the failure.
    const simdjson::error_code error = parser.allocate(kInitialCapacity);
    (void)error;
  }
  od::parser parser;
  std::vector<char> buffer;
};

ThreadState& threadState() {
  thread_local ThreadState state;
  return state;
}

// Finds the closing quote of the JSON string whose content starts at `content` and
// ends before `end`. Returns false when there is none.
bool stringLength(const char* content, const char* end, size_t& len, bool& escaped) {
  len = 0;
  escaped = false;
  // Fast path: the first quote closes the string when no backslash comes before it.
  const std::string_view rest(content, static_cast<size_t>(end - content));
  const size_t quote = rest.find('"');
  if (quote != std::string_view::npos &&
      rest.substr(0, quote).find('\\') == std::string_view::npos) {
    len = quote;
    return true;
  }
  while (content + len < end && content[len] != '"') {
    if (content[len] == '\\') {
      escaped = true;
      ++len;
    }
    ++len;
  }
  return content + len < end;
}

// Characters of a JSON number: digits, sign, decimal point and exponent.
constexpr std::array<bool, 256> kNumberChars = [] {
  std::array<bool, 256> table{};
  for (const char c : std::string_view("0123456789+-.eE")) {
    table[static_cast<unsigned char>(c)] = true;
  }
  return table;
}();

bool isNumberChar(char c) { return kNumberChars[static_cast<unsigned char>(c)]; }

class Flattener {
 public:
  Flattener(std::string_view text, const char* copy, Event& event)
      : text_(text), copy_(copy), event_(event) {}

  bool flattenObject(od::object object, std::string_view prefix, size_t depth) {
    if (depth > kMaxDepth) return false;
    for (auto member : object) {
      od::field field;
      if (std::move(member).get(field) != simdjson::SUCCESS) return false;
      const std::string_view key = memberKey(field);
      if (key.data() == nullptr) return false;
      const std::string_view name = joinName(prefix, key);
      if (name.data() == nullptr) return false;
      if (!flattenValue(field.value(), name, depth)) return false;
    }
    return true;
  }

 private:
  const char* copyEnd() const { return copy_ + text_.size(); }

  // Maps a view into the padded copy to the same bytes of the caller's text.
  std::string_view inText(const char* start, size_t len) const {
    return text_.substr(static_cast<size_t>(start - copy_), len);
  }

  std::string_view memberKey(od::field& field) {
    bool escaped = false;
    size_t len = 0;
    const char* raw = field.key().raw();
    if (!stringLength(raw, copyEnd(), len, escaped)) return {};
    if (!escaped) return inText(raw, len);
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return {};
    return copyToArena(key);
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

  bool flattenArray(od::array array, std::string_view prefix, size_t depth) {
    if (depth > kMaxDepth) return false;
    size_t index = 0;
    for (auto element : array) {
      od::value value;
      if (std::move(element).get(value) != simdjson::SUCCESS) return false;
      const std::string_view name = indexName(prefix, index++);
      if (name.data() == nullptr) return false;
      if (!flattenValue(value, name, depth)) return false;
    }
    return true;
  }

  bool flattenValue(od::value value, std::string_view name, size_t depth) {
    od::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return false;
    switch (type) {
      case od::json_type::object: {
        od::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS) return false;
        return flattenObject(object, name, depth + 1);
      }
      case od::json_type::array: {
        od::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) return false;
        return flattenArray(array, name, depth + 1);
      }
      case od::json_type::string:
        return addString(value, name);
      case od::json_type::number:
        return addNumber(value, name);
      case od::json_type::boolean: {
        bool flag = false;
        if (value.get_bool().get(flag) != simdjson::SUCCESS) return false;
        event_.addField(name, flag ? "true" : "false");
        return true;
      }
      case od::json_type::null: {
        bool is_null = false;
        return value.is_null().get(is_null) == simdjson::SUCCESS && is_null;
      }
    }
    return false;
  }

  bool addString(od::value& value, std::string_view name) {
    const std::string_view token = value.raw_json_token();
    bool escaped = false;
    size_t len = 0;
    if (!stringLength(token.data() + 1, copyEnd(), len, escaped)) return false;
    if (!escaped) {
      event_.addField(name, inText(token.data() + 1, len));
      return true;
    }
    std::string_view decoded;
    if (value.get_string().get(decoded) != simdjson::SUCCESS) return false;
    const std::string_view copy = copyToArena(decoded);
    if (copy.data() == nullptr) return false;
    event_.addField(name, copy);
    return true;
  }

  // Keeps the number exactly as written ("1521911799.739898", "1e3"), after checking
  // that it is one.
  bool addNumber(od::value& value, std::string_view name) {
    const std::string_view token = value.raw_json_token();
    size_t len = 0;
    while (len < token.size() && isNumberChar(token[len])) ++len;
    double parsed = 0;
    if (value.get_double().get(parsed) != simdjson::SUCCESS) return false;
    event_.addField(name, inText(token.data(), len));
    return true;
  }

  std::string_view text_;
  const char* copy_;
  Event& event_;
};

}  // namespace

bool flattenJsonOnDemand(std::string_view text, Event& event) {
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
  od::document doc;
  od::object root;
  if (state.parser.iterate(state.buffer.data(), text.size(), state.buffer.size()).get(doc) ==
          simdjson::SUCCESS &&
      doc.get_object().get(root) == simdjson::SUCCESS) {
    Flattener flattener(text, state.buffer.data(), event);
    ok = flattener.flattenObject(root, {}, 1);
    // Anything after the object (a second document) makes the text no single object.
    const char* trailing = nullptr;
    if (ok && doc.current_location().get(trailing) == simdjson::SUCCESS) ok = false;
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
