// Builds Events from one-line JSON objects for intel tests, the way a bare JSON line
// arrives: the whole line is the message and every scalar member becomes a generic field
// named by its dotted path ("dns.rrname"), with its value pointing into the message.
// Only what the test inputs use is supported: nested objects and scalars, no arrays and
// no escapes in strings.
#pragma once

#include <string>
#include <string_view>

#include "common/event.h"

namespace vigil::intel::testing {

class JsonFlattener {
 public:
  // Fills `event` from `line` (copied into the event's arena). Returns false when the
  // line uses JSON the helper does not support or the arena is too small.
  static bool fill(std::string_view line, Event& event) {
    event.reset();
    event.raw = event.arena.copy(line);
    if (event.raw.size() != line.size()) return false;
    event.message = event.raw;
    event.format = EventFormat::kJson;
    JsonFlattener flattener(event);
    size_t pos = 0;
    return flattener.object(pos, "") && flattener.skipSpace(pos) == event.raw.size();
  }

 private:
  explicit JsonFlattener(Event& event) : event_(event), text_(event.raw) {}

  size_t skipSpace(size_t& pos) const {
    while (pos < text_.size() && (text_[pos] == ' ' || text_[pos] == '\t')) ++pos;
    return pos;
  }

  bool string(size_t& pos, std::string_view& out) const {
    if (skipSpace(pos) >= text_.size() || text_[pos] != '"') return false;
    size_t close = text_.find('"', pos + 1);
    if (close == std::string_view::npos) return false;
    out = text_.substr(pos + 1, close - pos - 1);
    if (out.find('\\') != std::string_view::npos) return false;
    pos = close + 1;
    return true;
  }

  bool object(size_t& pos, const std::string& prefix) {
    if (skipSpace(pos) >= text_.size() || text_[pos] != '{') return false;
    ++pos;
    if (skipSpace(pos) < text_.size() && text_[pos] == '}') return ++pos, true;
    while (true) {
      std::string_view key;
      if (!string(pos, key)) return false;
      if (skipSpace(pos) >= text_.size() || text_[pos] != ':') return false;
      ++pos;
      std::string name = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
      if (!member(pos, name)) return false;
      if (skipSpace(pos) >= text_.size()) return false;
      if (text_[pos] == '}') return ++pos, true;
      if (text_[pos] != ',') return false;
      ++pos;
    }
  }

  bool member(size_t& pos, const std::string& name) {
    if (skipSpace(pos) >= text_.size()) return false;
    if (text_[pos] == '{') return object(pos, name);
    std::string_view value;
    if (text_[pos] == '"') {
      if (!string(pos, value)) return false;
    } else {
      size_t end = text_.find_first_of(",}", pos);
      if (end == std::string_view::npos) return false;
      value = text_.substr(pos, end - pos);
      pos = end;
    }
    std::string_view stored_name = event_.arena.copy(name);
    return stored_name.size() == name.size() && event_.addField(stored_name, value);
  }

  Event& event_;
  std::string_view text_;
};

}  // namespace vigil::intel::testing
