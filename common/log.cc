#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include "common/utf8.h"

namespace vigil {

void initLogging(const std::string& level) {
  spdlog::drop("vigil");
  auto logger = spdlog::stderr_logger_mt("vigil");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string logText(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const int length = utf8SequenceLength(text, i); length > 0) {
        out.append(text.substr(i, static_cast<size_t>(length)));
        i += static_cast<size_t>(length);
        continue;
      }
    }
    out += "\\x";
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0x0f]);
    ++i;
  }
  return out;
}

}  // namespace vigil
