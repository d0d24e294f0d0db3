// MISP JSON: events, REST collections and feed folders (IndicatorSetBuilder::addMisp*).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_depth.h"
#include "common/time.h"
#include "intel/builder.h"
#include "intel/internal/misp_types.h"
#include "intel/internal/text.h"

namespace vigil::intel {
namespace {

using internal::av;
using json = nlohmann::json;

std::string stringMember(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return "";
}

std::string invalidMispTimeReason(std::string_view key, std::string_view text) {
  return absl::StrCat("invalid ", av(key), " '", av(text),
                      "'; expected Unix seconds or an RFC 3339 timestamp such as "
                      "2024-05-01T10:00:00Z, in the years 1678 to 2261");
}

// Reads the optional time member `key` of a MISP attribute into `out`, which keeps its
// value when the member is absent, null or empty. MISP writes times as Unix seconds, in a
// string ("1603642920") or a number, or as ISO 8601. Returns the rejection reason when
// the member is present but invalid, else an empty string.
std::string readMispTime(const json& attribute, const char* key, absl::Time& out) {
  auto it = attribute.find(key);
  if (it == attribute.end() || it->is_null()) return "";
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_number_integer()) {
    text = it->dump();
  } else {
    return invalidMispTimeReason(key, it->dump());
  }
  if (text.empty()) return "";
  int64_t seconds = 0;
  if (absl::SimpleAtoi(av(text), &seconds)) {
    // The range of int64 nanoseconds, which common/time.h uses for every time.
    constexpr int64_t kMaxSeconds = INT64_MAX / kNanosPerSecond - 1;
    if (seconds > kMaxSeconds || seconds < -kMaxSeconds) return invalidMispTimeReason(key, text);
    out = absl::FromUnixSeconds(seconds);
    return "";
  }
  std::optional<int64_t> ns = parseRfc3339(text);
  if (!ns) return invalidMispTimeReason(key, text);
  out = absl::FromUnixNanos(*ns);
  return "";
}

void appendTags(const json& holder, std::vector<std::string>& tags) {
  auto it = holder.find("Tag");
  if (it == holder.end() || !it->is_array()) return;
  for (const json& tag : *it) {
    std::string name = tag.is_object() ? stringMember(tag, "name") : "";
    if (!name.empty()) tags.push_back(std::move(name));
  }
}

// The osint:certainty="N" tag (MISP's OSINT taxonomy) is the closest thing MISP has to
// a confidence value.
std::optional<uint8_t> certaintyOf(const std::vector<std::string>& tags) {
  constexpr std::string_view kPrefix = "osint:certainty=\"";
  for (const std::string& tag : tags) {
    if (tag.rfind(kPrefix, 0) != 0) continue;
    int value = 0;
    std::string_view number = std::string_view(tag).substr(kPrefix.size());
    number = number.substr(0, number.find('"'));
    if (absl::SimpleAtoi(av(number), &value) && value >= 0 && value <= 100) {
      return static_cast<uint8_t>(value);
    }
  }
  return std::nullopt;
}

bool toIds(const json& attribute) {
  auto it = attribute.find("to_ids");
  if (it == attribute.end()) return true;  // MISP's REST default for a new attribute
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) return it->get<std::string>() == "1" || it->get<std::string>() == "true";
  if (it->is_number()) return it->get<int>() != 0;
  return true;
}

class MispReader {
 public:
  MispReader(IndicatorSetBuilder& builder, std::string_view name, std::string_view origin,
             LoadReport& report)
      : builder_(builder), name_(name), origin_(origin), report_(report) {}

  // Reads any of the accepted document shapes. Returns NotFound when `doc` has none of
  // them, and InvalidArgument naming the JSON path when a member has the wrong type.
  absl::Status readDocument(const json& doc) {
    if (doc.is_object() && doc.contains("response")) {
      const json& response = doc["response"];
      if (response.is_array()) {
        for (size_t i = 0; i < response.size(); ++i) {
          std::string path = absl::StrCat("response[", i, "]");
          if (absl::Status s = readResponseEntry(response[i], path); !s.ok()) return s;
        }
        return absl::OkStatus();
      }
      if (response.is_object()) return readEvent(response, "response");
      return wrongType(response, "response",
                       "an array of search results or an object with an \"Attribute\" array");
    }
    if (doc.is_object() && doc.contains("Event")) return readEvent(doc["Event"], "Event");
    if (doc.is_object() && (doc.contains("Attribute") || doc.contains("Object"))) {
      return readEvent(doc, "event");
    }
    return absl::NotFoundError("no MISP document shape");
  }

 private:
  // Returns the error for a member of the wrong JSON type, with its path in the file.
  absl::Status wrongType(const json& value, const std::string& path,
                         std::string_view expected) const {
    return absl::InvalidArgumentError(absl::StrCat("MISP file ", av(origin_), " has ", path,
                                                   " as a JSON ", value.type_name(),
                                                   "; expected ", av(expected)));
  }

  // One entry of a REST search result: {"Event": ...}, {"Object": {...}} (the object
  // search) or a bare event body. An entry that is no JSON object is a rejection.
  absl::Status readResponseEntry(const json& entry, const std::string& path) {
    if (!entry.is_object()) {
      rejectNonObject(entry, path, "a search result object");
      return absl::OkStatus();
    }
    if (entry.contains("Event")) return readEvent(entry["Event"], absl::StrCat(path, ".Event"));
    auto object = entry.find("Object");
    if (object != entry.end()) {
      std::string object_path = absl::StrCat(path, ".Object");
      if (!object->is_object()) return wrongType(*object, object_path, "a MISP object");
      std::vector<std::string> tags;
      appendTags(*object, tags);
      return readAttributes(*object, tags, object_path);
    }
    return readEvent(entry, path);
  }

  absl::Status readEvent(const json& event, const std::string& path) {
    if (!event.is_object()) return wrongType(event, path, "an object (a MISP event)");
    std::vector<std::string> event_tags;
    appendTags(event, event_tags);
    if (absl::Status s = readAttributes(event, event_tags, path); !s.ok()) return s;
    auto objects = event.find("Object");
    if (objects == event.end()) return absl::OkStatus();
    std::string objects_path = absl::StrCat(path, ".Object");
    if (!objects->is_array()) return wrongType(*objects, objects_path, "an array of MISP objects");
    for (size_t i = 0; i < objects->size(); ++i) {
      const json& object = (*objects)[i];
      std::string object_path = absl::StrCat(objects_path, "[", i, "]");
      if (!object.is_object()) {
        rejectNonObject(object, object_path, "a MISP object");
        continue;
      }
      if (absl::Status s = readAttributes(object, event_tags, object_path); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status readAttributes(const json& holder, const std::vector<std::string>& event_tags,
                              const std::string& path) {
    auto attributes = holder.find("Attribute");
    if (attributes == holder.end()) return absl::OkStatus();
    std::string attributes_path = absl::StrCat(path, ".Attribute");
    if (!attributes->is_array()) {
      return wrongType(*attributes, attributes_path, "an array of MISP attributes");
    }
    for (size_t i = 0; i < attributes->size(); ++i) {
      const json& attribute = (*attributes)[i];
      std::string attribute_path = absl::StrCat(attributes_path, "[", i, "]");
      if (!attribute.is_object()) {
        rejectNonObject(attribute, attribute_path, "a MISP attribute object");
        continue;
      }
      readAttribute(attribute, event_tags, absl::StrCat(av(origin_), ":", attribute_path));
    }
    return absl::OkStatus();
  }

  // Counts an array entry that is no JSON object as a rejection at `path`.
  void rejectNonObject(const json& entry, const std::string& path, std::string_view expected) {
    builder_.reject(absl::StrCat(av(origin_), ":", path),
                    absl::StrCat("entry is a JSON ", entry.type_name(), "; expected ",
                                 av(expected)),
                    entry.dump(), report_);
  }

  void readAttribute(const json& attribute, const std::vector<std::string>& event_tags,
                     const std::string& location) {
    std::string type = stringMember(attribute, "type");
    std::string value = stringMember(attribute, "value");
    auto parts = internal::mispTypeParts(type);
    if (!parts) {
      ++report_.unknown_types[type.empty() ? "(none)" : type];
      return;
    }
    if (!toIds(attribute)) {
      ++report_.not_for_detection;
      return;
    }
    IndicatorMeta meta;
    meta.tags = event_tags;
    appendTags(attribute, meta.tags);
    meta.confidence = certaintyOf(meta.tags);
    absl::Time stamp = absl::InfinitePast();
    std::string time_error = readMispTime(attribute, "timestamp", stamp);
    if (time_error.empty()) time_error = readMispTime(attribute, "first_seen", meta.first_seen);
    if (time_error.empty()) time_error = readMispTime(attribute, "last_seen", meta.last_seen);
    if (!time_error.empty()) {
      builder_.reject(location, time_error, value, report_);
      return;
    }
    if (meta.first_seen == absl::InfinitePast()) meta.first_seen = stamp;
    if (meta.last_seen == absl::InfinitePast()) meta.last_seen = stamp;

    std::vector<std::string> values = absl::StrSplit(value, '|');
    if (values.size() != parts->size()) {
      builder_.reject(location,
                      absl::StrCat("MISP ", type, " value has ", values.size(),
                                   " parts separated by '|'; expected ", parts->size()),
                      value, report_);
      return;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (!(*parts)[i]) continue;
      builder_.addIndicator(name_, (*parts)[i], values[i], meta, location, report_);
    }
  }

  IndicatorSetBuilder& builder_;
  std::string_view name_;
  std::string_view origin_;
  LoadReport& report_;
};

}  // namespace

absl::StatusOr<LoadReport> IndicatorSetBuilder::addMispFile(std::string_view name,
                                                            const std::string& path) {
  absl::StatusOr<std::string> text = readFile(name, path);
  if (!text.ok()) return text.status();
  return addMispText(name, *text, path);
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addMispText(std::string_view name,
                                                            std::string_view text,
                                                            std::string_view origin) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  if (jsonNestsDeeper(text)) {
    return absl::InvalidArgumentError(absl::StrCat("MISP file ", av(origin),
                                                   " nests arrays and objects deeper than ",
                                                   kMaxJsonDepth, " levels; no MISP event does"));
  }
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("MISP file ", av(origin), " is not valid JSON"));
  }
  LoadReport report;
  report.list = std::string(name);
  MispReader reader(*this, name, origin, report);
  absl::Status read = reader.readDocument(doc);
  if (absl::IsInvalidArgument(read)) return read;
  if (!read.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MISP file ", av(origin),
        " has no \"Event\", \"response\", \"Attribute\" or \"Object\" member; expected a MISP "
        "event or a REST search result"));
  }
  return report;
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addMispFeedFolder(std::string_view name,
                                                                  const std::string& dir) {
  std::filesystem::path folder(dir);
  std::string manifest_path = (folder / "manifest.json").string();
  absl::StatusOr<std::string> manifest_text = readFile(name, manifest_path);
  if (!manifest_text.ok()) return manifest_text.status();
  json manifest = jsonNestsDeeper(*manifest_text)
                      ? json(json::value_t::discarded)
                      : json::parse(*manifest_text, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MISP feed manifest ", manifest_path, " is not a JSON object keyed by event uuid"));
  }
  LoadReport report;
  report.list = std::string(name);
  for (const auto& [uuid, info] : manifest.items()) {
    std::string event_path = (folder / (uuid + ".json")).string();
    // A uuid that is no plain file name must not reach outside the folder.
    if (uuid.find_first_of("/\\") != std::string::npos || uuid.empty() || uuid[0] == '.') {
      reject(manifest_path, absl::StrCat("manifest key '", uuid, "' is not an event uuid"), "",
             report);
      continue;
    }
    absl::StatusOr<LoadReport> event = addMispFile(name, event_path);
    if (!event.ok()) {
      reject(event_path, std::string(event.status().message()), "", report);
      continue;
    }
    report.loaded += event->loaded;
    report.duplicates += event->duplicates;
    report.rejected += event->rejected;
    report.expired += event->expired;
    report.not_for_detection += event->not_for_detection;
    for (size_t t = 0; t < kIndicatorTypeCount; ++t) {
      report.loaded_by_type[t] += event->loaded_by_type[t];
    }
    for (const auto& [type, count] : event->unknown_types) report.unknown_types[type] += count;
    for (Rejection& r : event->rejections) {
      if (report.rejections.size() < options_.max_kept_rejections) {
        report.rejections.push_back(std::move(r));
      }
    }
  }
  return report;
}

}  // namespace vigil::intel
