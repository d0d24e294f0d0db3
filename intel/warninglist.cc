// MISP warninglists: loading (IndicatorSetBuilder::addWarninglistText) and the check
// that build() runs on every indicator.
#include <algorithm>
#include <nlohmann/json.hpp>

#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "intel/builder.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/misp_types.h"
#include "intel/internal/punycode.h"
#include "intel/internal/text.h"
#include "intel/internal/warninglist.h"

namespace vigil::intel {
namespace {

using internal::av;
using json = nlohmann::json;

IpAddr maskTo(IpAddr addr, unsigned len) {
  for (unsigned bit = len; bit < 128; ++bit) {
    addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return addr;
}

// The host part of a domain, URL or email indicator; empty for other types.
std::string_view hostOf(IndicatorType type, std::string_view text) {
  if (type == IndicatorType::kDomain) return text;
  if (type == IndicatorType::kEmail) return text.substr(text.rfind('@') + 1);
  if (type != IndicatorType::kUrl) return {};
  size_t sep = text.find("://");
  std::string_view rest = text.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() != '[') rest = rest.substr(0, rest.find(':'));
  return rest;
}

void setApplies(internal::Warninglist& list, const json& attributes) {
  bool any = false;
  if (attributes.is_array()) {
    for (const json& attribute : attributes) {
      if (!attribute.is_string()) continue;
      auto parts = internal::mispTypeParts(attribute.get<std::string>());
      if (!parts) continue;
      for (const auto& part : *parts) {
        if (!part) continue;
        any = true;
        list.applies[static_cast<size_t>(*part)] = true;
        if (*part == IndicatorType::kIpv4) {
          list.applies[static_cast<size_t>(IndicatorType::kIpv6)] = true;
          list.applies[static_cast<size_t>(IndicatorType::kCidr)] = true;
        }
      }
      // MISP warns on URLs whose host is on a hostname list.
      if (attribute == "url" || attribute == "uri") {
        any = true;
        list.applies[static_cast<size_t>(IndicatorType::kUrl)] = true;
      }
    }
  }
  if (!any) list.applies.fill(true);
}

// Adds one entry; returns the reason when the entry is invalid for the list type.
std::string addListEntry(internal::Warninglist& list, const std::string& value) {
  std::string lower = absl::AsciiStrToLower(av(value));
  // Indicators keep internationalized names in punycode, so an entry written in UTF-8
  // is compared in that form too.
  const bool ascii = std::all_of(lower.begin(), lower.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (list.type == "string") {
    if (!ascii) {
      if (std::optional<std::string> name = internal::toAsciiDomain(lower)) list.names.insert(*name);
    }
    list.names.insert(lower);
  } else if (list.type == "hostname") {
    if (!ascii) {
      std::optional<std::string> converted = internal::toAsciiDomain(lower);
      if (!converted) return "host name with invalid UTF-8; write it in UTF-8 or in punycode";
      lower = std::move(*converted);
    }
    std::string_view name = lower;
    bool parents_only = !name.empty() && name.front() == '.';
    if (parents_only) name.remove_prefix(1);
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty()) return "empty host name";
    (parents_only ? list.parents_only : list.names).insert(std::string(name));
  } else if (list.type == "cidr") {
    std::optional<IpPrefix> prefix;
    if (value.find('/') != std::string::npos) {
      prefix = parsePrefix(value);
    } else if (std::optional<IpAddr> addr = parseIp(value)) {
      prefix = IpPrefix{*addr, 128};
    }
    if (!prefix) return "invalid address or CIDR; expected ADDR or ADDR/LEN";
    list.networks[prefix->len].insert(maskTo(prefix->addr, prefix->len));
  } else if (list.type == "substring") {
    if (lower.empty()) return "empty substring, which would suppress every indicator";
    list.substrings.push_back(lower);
  } else {
    try {
      list.regexes.emplace_back(value, std::regex::ECMAScript | std::regex::icase);
    } catch (const std::regex_error& e) {
      return absl::StrCat("invalid regular expression: ", e.what());
    }
  }
  return "";
}

}  // namespace

bool internal::Warninglist::contains(IndicatorType indicator_type,
                                                const std::string& text,
                                                const IpPrefix& prefix) const {
  if (!applies[static_cast<size_t>(indicator_type)]) return false;
  bool ip = indicator_type == IndicatorType::kIpv4 || indicator_type == IndicatorType::kIpv6 ||
            indicator_type == IndicatorType::kCidr;
  if (type == "cidr") {
    if (!ip) return false;
    for (const auto& [len, set] : networks) {
      if (len > prefix.len) break;
      if (set.contains(maskTo(prefix.addr, len))) return true;
    }
    return false;
  }
  if (type == "string") return names.contains(text);
  if (type == "hostname") {
    std::string_view host = hostOf(indicator_type, text);
    if (host.empty()) return false;
    if (names.contains(av(host))) return true;
    for (size_t dot = host.find('.'); dot != std::string_view::npos;
         dot = host.find('.', dot + 1)) {
      std::string_view parent = host.substr(dot + 1);
      if (names.contains(av(parent)) || parents_only.contains(av(parent))) return true;
    }
    return false;
  }
  if (type == "substring") {
    for (const std::string& part : substrings) {
      if (text.find(part) != std::string::npos) return true;
    }
    return false;
  }
  for (const std::regex& regex : regexes) {
    if (std::regex_search(text, regex)) return true;
  }
  return false;
}

absl::StatusOr<WarninglistReport> IndicatorSetBuilder::addWarninglistFile(
    const std::string& path) {
  absl::StatusOr<std::string> text = readFile("warninglist", path);
  if (!text.ok()) return text.status();
  return addWarninglistText(*text, path);
}

absl::StatusOr<WarninglistReport> IndicatorSetBuilder::addWarninglistText(
    std::string_view text, std::string_view origin) {
  if (absl::Status s = checkReady("warninglist"); !s.ok()) return s;
  // Rejected values are quoted with dump(), which recurses once per nesting level.
  if (jsonNestsDeeper(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("warninglist ", av(origin), " nests arrays and objects deeper than ",
                     kMaxJsonDepth, " levels; a warninglist is an object with a flat list"));
  }
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("warninglist ", av(origin), " is not a JSON object"));
  }
  auto list = std::make_unique<internal::Warninglist>();
  // json::value() throws when the member is not a string, so read through find().
  const auto name = doc.find("name");
  list->name = name != doc.end() && name->is_string() ? name->get<std::string>()
                                                       : std::string(origin);
  const auto type = doc.find("type");
  if (type == doc.end()) {
    list->type = "string";
  } else {
    list->type = type->is_string() ? type->get<std::string>() : type->dump();  // rejected below
  }
  if (list->type != "string" && list->type != "hostname" && list->type != "cidr" &&
      list->type != "substring" && list->type != "regex") {
    return absl::InvalidArgumentError(
        absl::StrCat("warninglist ", av(origin), " has unknown type '", list->type,
                     "'; expected string, hostname, cidr, substring or regex"));
  }
  const json* values = doc.contains("list") ? &doc["list"] : nullptr;
  if (values == nullptr || !values->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("warninglist ", av(origin), " has no \"list\" array of values"));
  }
  setApplies(*list, doc.contains("matching_attributes") ? doc["matching_attributes"] : json());

  WarninglistReport report{list->name, list->type, 0, 0, {}};
  for (size_t i = 0; i < values->size(); ++i) {
    const json& value = (*values)[i];
    std::string reason = value.is_string() ? addListEntry(*list, value.get<std::string>())
                                           : std::string("entry is not a string");
    if (reason.empty()) {
      ++report.entries;
      continue;
    }
    ++report.rejected;
    if (report.rejections.size() < options_.max_kept_rejections) {
      report.rejections.push_back({absl::StrCat(av(origin), ":list[", i, "]"), reason,
                                   value.is_string() ? value.get<std::string>() : value.dump()});
    }
  }
  warninglists_.push_back(std::move(list));
  return report;
}

bool IndicatorSetBuilder::suppressed(const Entry& entry, IndicatorSetStats& stats) const {
  for (const auto& list : warninglists_) {
    if (list->contains(entry.indicator.type, entry.indicator.text, entry.prefix)) {
      ++stats.suppressed_by_warninglist[list->name];
      return true;
    }
  }
  return false;
}

}  // namespace vigil::intel
