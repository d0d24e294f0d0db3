// Splits a YAML stream into its documents before yaml-cpp parses it.
//
// yaml-cpp 0.7.0 (Debian 12) loops forever in YAML::LoadAll on some invalid streams, for
// example a bare "," (jbeder/yaml-cpp issue #1040, fixed upstream by pull request #1319
// in 2024), and each pass allocates, so a pushed rule file could hang the loader and
// exhaust memory.
// YAML::Load on one document does not loop, so the loader splits the stream itself and
// loads each document alone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vigil::correlate::internal {

// One document of a stream. yaml-cpp's marks in it count lines from the document's
// start, so add `first_line` to get the line of the whole stream. The text is not padded
// with newlines instead, because padding made loading quadratic in the number of documents.
struct YamlDocumentText {
  std::string text;
  size_t first_line = 0;  // 0-based line of the stream where the document starts
};

// Splits `stream` at document markers: a line that is "---" or "..." alone or followed
// by a space or tab, at column 0. YAML forbids such a line inside any scalar, so the split
// never cuts content. A "---" line stays at the start of its document (it may carry
// content, as in "--- {a: 1}"), a "..." line ends the document before it. Directive lines
// ("%YAML 1.2") stay with the document that follows them. Documents with nothing but
// markers, comments and blank lines are left out. Allocates the returned texts.
std::vector<YamlDocumentText> splitYamlDocuments(std::string_view stream);

}  // namespace vigil::correlate::internal
