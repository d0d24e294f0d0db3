// STIX 2.x bundles (IndicatorSetBuilder::addStixText): indicator objects whose pattern
// reduces to single values (intel/stix_pattern.h).
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "common/time.h"
#include "intel/builder.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/text.h"
#include "intel/stix_pattern.h"

namespace vigil::intel {
namespace {

using internal::av;
using json = nlohmann::json;

std::string stringMember(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// Reads the optional timestamp member `key` of `object` into `out`, which keeps its value
// when the member is absent. Returns the rejection reason when the member is present but
// is no RFC 3339 timestamp string, else an empty string.
std::string readTimeMember(const json& object, const char* key, absl::Time& out) {
  auto it = object.find(key);
  if (it == object.end()) return "";
  if (!it->is_string()) return internal::invalidTimeReason(key, it->dump());
  const std::string& text = it->get_ref<const std::string&>();
  std::optional<int64_t> ns = parseRfc3339(text);
  if (!ns) return internal::invalidTimeReason(key, text);
  out = absl::FromUnixNanos(*ns);
  return "";
}

// Reads the indicator's confidence, labels and times into `meta`. Returns the rejection
// reason of the first invalid member, else an empty string.
std::string readStixMeta(const json& object, IndicatorMeta& meta) {
  auto confidence = object.find("confidence");
  if (confidence != object.end()) {
    // nlohmann::json stores every integer literal without a minus sign as unsigned.
    bool in_range = confidence->is_number_unsigned() && confidence->get<uint64_t>() <= 100;
    if (!in_range) {
      return absl::StrCat("invalid confidence '", confidence->dump(),
                          "'; expected an integer 0 to 100");
    }
    meta.confidence = static_cast<uint8_t>(confidence->get<uint64_t>());
  }
  auto labels = object.find("labels");
  if (labels != object.end() && labels->is_array()) {
    for (const json& label : *labels) {
      if (label.is_string()) meta.tags.push_back(label.get<std::string>());
    }
  }
  const std::pair<const char*, absl::Time*> times[] = {{"created", &meta.first_seen},
                                                       {"modified", &meta.last_seen},
                                                       {"valid_from", &meta.valid_from},
                                                       {"valid_until", &meta.valid_until}};
  for (const auto& [key, out] : times) {
    std::string reason = readTimeMember(object, key, *out);
    if (!reason.empty()) return reason;
  }
  return "";
}

}  // namespace

absl::StatusOr<LoadReport> IndicatorSetBuilder::addStixFile(std::string_view name,
                                                            const std::string& path) {
  absl::StatusOr<std::string> text = readFile(name, path);
  if (!text.ok()) return text.status();
  return addStixText(name, *text, path);
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addStixText(std::string_view name,
                                                            std::string_view text,
                                                            std::string_view origin) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  if (jsonNestsDeeper(text)) {
    return absl::InvalidArgumentError(absl::StrCat("STIX file ", av(origin),
                                                   " nests arrays and objects deeper than ",
                                                   kMaxJsonDepth, " levels; no STIX bundle does"));
  }
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("STIX file ", av(origin), " is not valid JSON"));
  }
  const json* objects = nullptr;
  if (doc.is_array()) {
    objects = &doc;
  } else if (doc.is_object() && stringMember(doc, "type") == "bundle") {
    auto member = doc.find("objects");
    // An empty bundle may leave out "objects".
    if (member != doc.end() && !member->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("STIX file ", av(origin),
                                                     " has objects as a JSON ",
                                                     member->type_name(),
                                                     "; expected an array of STIX objects"));
    }
    if (member != doc.end()) objects = &*member;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("STIX file ", av(origin),
                     " is neither a bundle ({\"type\": \"bundle\", \"objects\": [...]}) nor a "
                     "JSON array of STIX objects"));
  }
  LoadReport report;
  report.list = std::string(name);
  if (objects == nullptr) return report;

  for (size_t i = 0; i < objects->size(); ++i) {
    const json& object = (*objects)[i];
    if (!object.is_object()) {
      reject(absl::StrCat(av(origin), ":objects[", i, "]"),
             absl::StrCat("entry is a JSON ", object.type_name(), "; expected a STIX object"),
             object.dump(), report);
      continue;
    }
    if (stringMember(object, "type") != "indicator") continue;
    std::string id = stringMember(object, "id");
    std::string location =
        absl::StrCat(av(origin), ":", id.empty() ? absl::StrCat("objects[", i, "]") : id);
    std::string pattern = stringMember(object, "pattern");
    // STIX 2.0 indicators have no pattern_type; their patterns are STIX patterns.
    std::string pattern_type = stringMember(object, "pattern_type");
    if (!pattern_type.empty() && pattern_type != "stix") {
      reject(location,
             absl::StrCat("pattern_type '", pattern_type, "' is not supported; only stix"),
             pattern, report);
      continue;
    }
    // json::value() throws when the member has another type, so check the type first.
    const auto revoked = object.find("revoked");
    if (revoked != object.end() && revoked->is_boolean() && revoked->get<bool>()) {
      reject(location, "indicator is revoked", pattern, report);
      continue;
    }
    absl::StatusOr<std::unique_ptr<stix::Node>> tree = stix::parsePattern(pattern);
    if (!tree.ok()) {
      reject(location, std::string(tree.status().message()), pattern, report);
      continue;
    }
    absl::StatusOr<std::vector<stix::PatternValue>> values = stix::patternValues(**tree);
    if (!values.ok()) {
      reject(location, std::string(values.status().message()), pattern, report);
      continue;
    }
    // Check every value before adding any, so a pattern loads whole or not at all.
    std::string bad;
    for (const stix::PatternValue& value : *values) {
      if (std::string family = stix::addressFamilyError(value); !family.empty()) {
        bad = std::move(family);
        break;
      }
      absl::StatusOr<internal::ParsedIndicator> parsed =
          internal::parseTypedIndicator(value.type, value.value, options_);
      if (!parsed.ok()) {
        bad = std::string(parsed.status().message());
        // The list parser guesses a type from the text, so its reason for "999.1.1.1"
        // speaks of domains; an address path gets one about addresses.
        if (value.type == IndicatorType::kIpv4 || value.type == IndicatorType::kIpv6) {
          const bool v4 = value.type == IndicatorType::kIpv4;
          const char* examples =
              v4 ? "198.51.100.7 or 198.51.100.0/24" : "2001:db8::7 or 2001:db8::/32";
          bad = absl::StrCat("invalid ", v4 ? "ipv4-addr" : "ipv6-addr", " value '", value.value,
                             "'; expected an ", v4 ? "IPv4" : "IPv6", " address or CIDR such as ",
                             examples, " (", bad, ")");
        }
        break;
      }
    }
    if (!bad.empty()) {
      reject(location, bad, pattern, report);
      continue;
    }

    IndicatorMeta meta;
    if (std::string reason = readStixMeta(object, meta); !reason.empty()) {
      reject(location, reason, pattern, report);
      continue;
    }
    for (const stix::PatternValue& value : *values) {
      addIndicator(name, value.type, value.value, meta, location, report);
    }
  }
  return report;
}

}  // namespace vigil::intel
