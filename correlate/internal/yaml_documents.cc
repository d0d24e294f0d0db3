#include "correlate/internal/yaml_documents.h"

namespace vigil::correlate::internal {

namespace {

// True when `line` is `marker` alone or followed by a space or tab.
bool isMarker(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  if (line.size() == marker.size()) return true;
  const char next = line[marker.size()];
  return next == ' ' || next == '\t';
}

// True when the document so far has nothing but blank lines, comments and directives, so
// a "---" that follows belongs to the same document.
bool onlyPreamble(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#' && line[first] != '%') {
      return false;
    }
    start = end + 1;
  }
  return true;
}

}  // namespace

std::vector<YamlDocumentText> splitYamlDocuments(std::string_view stream) {
  std::vector<YamlDocumentText> documents;
  YamlDocumentText current;
  size_t line_number = 0;
  size_t start = 0;

  // Set once the document has a line with YAML content besides markers and comments.
  bool has_content = false;
  auto finish = [&](size_t next_first_line) {
    if (has_content) documents.push_back(std::move(current));
    current = YamlDocumentText{};
    current.first_line = next_first_line;
    has_content = false;
  };

  while (start < stream.size()) {
    size_t end = stream.find('\n', start);
    const bool last = end == std::string_view::npos;
    if (last) end = stream.size();
    std::string_view line = stream.substr(start, end - start);
    std::string_view bare = line;
    if (bare.ends_with('\r')) bare.remove_suffix(1);

    if (isMarker(bare, "---") && !onlyPreamble(current.text)) {
      finish(line_number);
    }
    if (isMarker(bare, "...")) {
      finish(line_number + 1);
    } else {
      std::string_view content = isMarker(bare, "---") ? bare.substr(3) : bare;
      const size_t first = content.find_first_not_of(" \t");
      if (first != std::string_view::npos && content[first] != '#' && content[first] != '%') {
        has_content = true;
      }
      current.text.append(line);
      current.text.push_back('\n');
    }
    ++line_number;
    start = end + 1;
  }
  finish(line_number);
  return documents;
}

}  // namespace vigil::correlate::internal
