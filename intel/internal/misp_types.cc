#include "intel/internal/misp_types.h"

#include <utility>

namespace vigil::intel::internal {

std::optional<std::vector<std::optional<IndicatorType>>> mispTypeParts(std::string_view type) {
  using T = IndicatorType;
  struct Row {
    std::string_view misp;
    std::vector<std::optional<IndicatorType>> parts;
  };
  // kIpv4 stands for any address or CIDR: the declared IP types are interchangeable.
  static const std::vector<Row> kRows = {
      {"ip-src", {T::kIpv4}},
      {"ip-dst", {T::kIpv4}},
      {"ip-src|port", {T::kIpv4, std::nullopt}},
      {"ip-dst|port", {T::kIpv4, std::nullopt}},
      {"domain", {T::kDomain}},
      {"hostname", {T::kDomain}},
      {"hostname|port", {T::kDomain, std::nullopt}},
      {"domain|ip", {T::kDomain, T::kIpv4}},
      {"url", {T::kUrl}},
      {"md5", {T::kMd5}},
      {"sha1", {T::kSha1}},
      {"sha256", {T::kSha256}},
      {"filename|md5", {T::kFilename, T::kMd5}},
      {"filename|sha1", {T::kFilename, T::kSha1}},
      {"filename|sha256", {T::kFilename, T::kSha256}},
      {"malware-sample", {T::kFilename, T::kMd5}},
      {"email", {T::kEmail}},
      {"email-src", {T::kEmail}},
      {"email-dst", {T::kEmail}},
      {"email-reply-to", {T::kEmail}},
      {"target-email", {T::kEmail}},
      {"whois-registrant-email", {T::kEmail}},
      {"filename", {T::kFilename}},
      {"regexp", {T::kRegex}},
  };
  for (const Row& row : kRows) {
    if (row.misp == type) return row.parts;
  }
  return std::nullopt;
}

}  // namespace vigil::intel::internal
