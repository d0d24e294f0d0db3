// CSV feeds (IndicatorSetBuilder::addCsvText) and LOKI regex lists
// (IndicatorSetBuilder::addRegexListText).
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/time.h"
#include "intel/builder.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/text.h"

namespace vigil::intel {
namespace {

using internal::av;

struct CsvRecord {
  std::vector<std::string> fields;
  size_t line = 0;  // line where the record starts, 1-based
};

// Splits `text` into RFC 4180 records. A quoted field may hold the delimiter, CR/LF and
// doubled quotes; a quote inside an unquoted field is kept as text. Lines that start
// with `comment` outside a record are skipped. Returns the error of an unterminated
// quoted field in `error`, with its line.
std::vector<CsvRecord> splitCsv(std::string_view text, char delimiter, char comment,
                                std::string& error) {
  std::vector<CsvRecord> records;
  size_t line = 1;
  size_t i = 0;
  while (i < text.size()) {
    if (comment != '\0' && text[i] == comment) {
      size_t end = text.find('\n', i);
      i = end == std::string_view::npos ? text.size() : end + 1;
      ++line;
      continue;
    }
    CsvRecord record;
    record.line = line;
    std::string field;
    bool at_field_start = true;
    bool quoted = false;
    bool done = false;
    while (!done) {
      if (i >= text.size()) {
        if (quoted) {
          error = absl::StrCat("line ", record.line, ": quoted field is not closed");
          return records;
        }
        done = true;
        break;
      }
      char c = text[i++];
      if (quoted) {
        if (c == '"' && i < text.size() && text[i] == '"') {
          field += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          if (c == '\n') ++line;
          field += c;
        }
        continue;
      }
      if (c == '"' && at_field_start) {
        quoted = true;
        at_field_start = false;
      } else if (c == delimiter) {
        record.fields.push_back(std::move(field));
        field.clear();
        at_field_start = true;
      } else if (c == '\n') {
        ++line;
        done = true;
      } else if (c != '\r') {
        field += c;
        at_field_start = false;
      }
    }
    record.fields.push_back(std::move(field));
    bool blank = record.fields.size() == 1 &&
                 absl::StripAsciiWhitespace(av(record.fields[0])).empty();
    if (!blank) records.push_back(std::move(record));
  }
  return records;
}

// Resolves a column to its index; -1 when unused.
absl::StatusOr<int> columnIndex(const CsvColumn& column, const std::vector<std::string>* header,
                                std::string_view what) {
  if (!column.used()) return -1;
  if (column.name.empty()) return column.index;
  if (header == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CSV ", av(what), " column '", column.name,
        "' is given by name but the feed has no header row; give its index instead"));
  }
  for (size_t i = 0; i < header->size(); ++i) {
    if (absl::StripAsciiWhitespace(av((*header)[i])) == column.name) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("CSV ", av(what), " column '", column.name, "' is not in the header row"));
}

struct NamedColumn {
  std::string_view option;  // the CsvOptions member, for messages: "value", "tags", ...
  const CsvColumn& column;
};

// Checks that every column given by index exists: in the header row when the feed has
// one, else in the widest record. A feed without records has nothing to check.
absl::Status checkColumnRange(std::initializer_list<NamedColumn> columns,
                              const std::vector<CsvRecord>& records, bool has_header) {
  if (records.empty()) return absl::OkStatus();
  size_t width = records.front().fields.size();
  if (!has_header) {
    for (const CsvRecord& record : records) width = std::max(width, record.fields.size());
  }
  for (const NamedColumn& named : columns) {
    const CsvColumn& column = named.column;
    if (!column.name.empty() || column.index < 0) continue;
    if (static_cast<size_t>(column.index) < width) continue;
    return absl::InvalidArgumentError(
        absl::StrCat("CSV ", av(named.option), " column ", column.index, " is out of range: the ",
                     has_header ? "header row" : "widest record", " has ", width, " columns (0 to ",
                     width - 1, "); give a column index in that range or a header name"));
  }
  return absl::OkStatus();
}

const std::string* fieldAt(const CsvRecord& record, int index) {
  if (index < 0 || static_cast<size_t>(index) >= record.fields.size()) return nullptr;
  return &record.fields[static_cast<size_t>(index)];
}

// Reads the optional time column `field` of a record into `out`, which keeps its value
// when the column is unused or empty. Returns the rejection reason when the text is no
// RFC 3339 timestamp, else an empty string.
std::string readTime(const std::string* text, std::string_view field, absl::Time& out) {
  if (text == nullptr) return "";
  std::string_view trimmed = internal::sv(absl::StripAsciiWhitespace(av(*text)));
  if (trimmed.empty()) return "";
  std::optional<int64_t> ns = parseRfc3339(trimmed);
  if (!ns) return internal::invalidTimeReason(field, *text);
  out = absl::FromUnixNanos(*ns);
  return "";
}

// Finds the first ';' in a regex-list line that no backslash escapes. Returns its
// position, or npos. A backslash escapes the character after it, so in "a\\;80" the ';'
// ends the regex "a\\" (a literal backslash).
size_t scoreSeparator(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\') {
      ++i;
    } else if (line[i] == ';') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Parses a regex-list score: 1 to 3 digits with a value of at most 100, no sign or spaces.
std::optional<uint8_t> parseScore(std::string_view text) {
  if (text.empty() || text.size() > 3 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  int score = 0;
  for (char c : text) score = score * 10 + (c - '0');
  if (score > 100) return std::nullopt;
  return static_cast<uint8_t>(score);
}

}  // namespace

absl::StatusOr<LoadReport> IndicatorSetBuilder::addCsvFile(std::string_view name,
                                                           const std::string& path,
                                                           const CsvOptions& options) {
  absl::StatusOr<std::string> text = readFile(name, path);
  if (!text.ok()) return text.status();
  return addCsvText(name, *text, path, options);
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addCsvText(std::string_view name,
                                                           std::string_view text,
                                                           std::string_view origin,
                                                           const CsvOptions& options) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  if (!options.value.used()) {
    return absl::InvalidArgumentError(
        "missing CsvOptions::value; set it to the column that contains the indicator");
  }
  LoadReport report;
  report.list = std::string(name);
  std::string error;
  text = internal::stripUtf8Bom(text);
  std::vector<CsvRecord> records = splitCsv(text, options.delimiter, options.comment, error);
  const std::vector<std::string>* header =
      options.header && !records.empty() ? &records.front().fields : nullptr;

  absl::StatusOr<int> value_col = columnIndex(options.value, header, "value");
  absl::StatusOr<int> type_col = columnIndex(options.type, header, "type");
  absl::StatusOr<int> confidence_col = columnIndex(options.confidence, header, "confidence");
  absl::StatusOr<int> first_col = columnIndex(options.first_seen, header, "first_seen");
  absl::StatusOr<int> last_col = columnIndex(options.last_seen, header, "last_seen");
  absl::StatusOr<int> tags_col = columnIndex(options.tags, header, "tags");
  absl::StatusOr<int> path_col = columnIndex(options.url_path, header, "url_path");
  for (const absl::StatusOr<int>* col :
       {&value_col, &type_col, &confidence_col, &first_col, &last_col, &tags_col, &path_col}) {
    if (!col->ok()) return col->status();
  }
  if (absl::Status s = checkColumnRange({{"value", options.value},
                                         {"type", options.type},
                                         {"confidence", options.confidence},
                                         {"first_seen", options.first_seen},
                                         {"last_seen", options.last_seen},
                                         {"tags", options.tags},
                                         {"url_path", options.url_path}},
                                        records, header != nullptr);
      !s.ok()) {
    return s;
  }

  for (size_t r = header != nullptr ? 1 : 0; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    std::string location = absl::StrCat(av(origin), ":", record.line);
    const std::string* value = fieldAt(record, *value_col);
    if (value == nullptr || absl::StripAsciiWhitespace(av(*value)).empty()) {
      reject(location, absl::StrCat("record has no value in column ", *value_col), "", report);
      continue;
    }
    std::optional<IndicatorType> type = options.fixed_type;
    if (const std::string* type_text = fieldAt(record, *type_col)) {
      type = internal::parseIndicatorTypeName(*type_text);
      if (!type) {
        reject(location,
               absl::StrCat("unknown indicator type '", *type_text,
                            "'; expected ipv4, ipv6, cidr, domain, url, md5, sha1, sha256, "
                            "email, filename or regex"),
               *value, report);
        continue;
      }
    }
    IndicatorMeta meta;
    const std::string* confidence = fieldAt(record, *confidence_col);
    // An empty cell gives no confidence, like a feed without the column.
    if (confidence != nullptr && absl::StripAsciiWhitespace(av(*confidence)).empty()) {
      confidence = nullptr;
    }
    if (confidence != nullptr) {
      int number = 0;
      if (!absl::SimpleAtoi(av(*confidence), &number) || number < 0 || number > 100) {
        reject(location,
               absl::StrCat("invalid confidence '", *confidence, "'; expected 0 to 100"),
               *value, report);
        continue;
      }
      meta.confidence = static_cast<uint8_t>(number);
    }
    std::string time_error = readTime(fieldAt(record, *first_col), "first_seen", meta.first_seen);
    if (time_error.empty()) {
      time_error = readTime(fieldAt(record, *last_col), "last_seen", meta.last_seen);
    }
    if (!time_error.empty()) {
      reject(location, time_error, *value, report);
      continue;
    }
    if (const std::string* tags = fieldAt(record, *tags_col)) {
      for (std::string_view tag : internal::splitAny(*tags, {&options.tag_separator, 1}, true)) {
        meta.tags.emplace_back(internal::sv(absl::StripAsciiWhitespace(av(tag))));
      }
    }
    const std::string* path = fieldAt(record, *path_col);
    if (path != nullptr && !path->empty()) {
      std::string url = absl::StrCat("http://", *value, *path);
      addIndicator(name, IndicatorType::kUrl, url, meta, location, report);
      continue;
    }
    addIndicator(name, type, *value, meta, location, report);
  }
  if (!error.empty()) reject(absl::StrCat(av(origin), ":", error), "quoted field is not closed",
                             "", report);
  return report;
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addRegexListFile(std::string_view name,
                                                                 const std::string& path) {
  absl::StatusOr<std::string> text = readFile(name, path);
  if (!text.ok()) return text.status();
  return addRegexListText(name, *text, path);
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addRegexListText(std::string_view name,
                                                                 std::string_view text,
                                                                 std::string_view origin) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  LoadReport report;
  report.list = std::string(name);
  text = internal::stripUtf8Bom(text);
  size_t line_number = 0;
  for (std::string_view line : internal::splitAny(text, "\n", /*skip_empty=*/false)) {
    ++line_number;
    line = internal::sv(absl::StripAsciiWhitespace(av(line)));
    if (line.empty() || line.front() == '#') continue;
    std::string location = absl::StrCat(av(origin), ":", line_number);
    IndicatorMeta meta;
    // LOKI lines are REGEX;SCORE or REGEX;SCORE;FALSE_POSITIVE_REGEX. The first ';' that
    // no backslash escapes ends the regex, so a regex writes a literal ';' as "\;", which
    // Hyperscan reads as ';'. A line without such a ';' is a regex without a score.
    // NOTE: the false-positive regex is not applied; such IOCs alert on every match.
    size_t separator = scoreSeparator(line);
    if (separator != std::string_view::npos) {
      std::string_view rest = line.substr(separator + 1);
      std::string_view score_text = rest.substr(0, rest.find(';'));
      std::optional<uint8_t> score = parseScore(score_text);
      if (!score) {
        reject(location,
               absl::StrCat("invalid score '", av(score_text),
                            "' after ';'; expected REGEX;SCORE with SCORE a whole number 0 to "
                            "100, and a ';' inside the regex written as '\\;'"),
               line, report);
        continue;
      }
      meta.confidence = *score;
    }
    addIndicator(name, IndicatorType::kRegex, line.substr(0, separator), meta, location, report);
  }
  return report;
}

}  // namespace vigil::intel
