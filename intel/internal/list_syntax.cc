#include "intel/internal/list_syntax.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "intel/internal/punycode.h"
#include "intel/internal/text.h"

namespace vigil::intel::internal {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (isBlank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (isBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool allHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isxdigit(c); });
}

bool isHostsAddress(std::string_view s) {
  return s == "0.0.0.0" || s == "127.0.0.1" || s == "::" || s == "::1";
}

absl::Status invalid(std::string_view what, std::string_view value, std::string_view fix) {
  return absl::InvalidArgumentError(
      absl::StrCat(av(what), " '", av(value), "'", fix.empty() ? "" : "; ", av(fix)));
}

// Clears every bit of `addr` after the first `len`.
IpAddr maskTo(IpAddr addr, unsigned len) {
  for (unsigned bit = len; bit < 128; ++bit) {
    addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return addr;
}

// parseIp() also accepts "[v6]", "v4:port" and "[v6]:port", which a list line must not
// use: a port would be dropped silently and the indicator would be broader than listed.
absl::Status checkBareAddress(std::string_view text) {
  if (text.find_first_of("[]") != std::string_view::npos) {
    return invalid("bracketed address", text, "write the address without brackets");
  }
  if (std::count(text.begin(), text.end(), ':') == 1) {
    return invalid("address with a port", text, "write the address without ':PORT'");
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedIndicator> parseCidr(std::string_view token, const BuilderOptions& options) {
  std::string_view addr_text = token.substr(0, token.find('/'));
  if (absl::Status s = checkBareAddress(addr_text); !s.ok()) return s;
  std::optional<IpPrefix> p = parsePrefix(token);
  if (!p) {
    return invalid("invalid CIDR", token,
                   "expected ADDR/LEN with LEN 0-32 for IPv4 or 0-128 for IPv6");
  }
  ParsedIndicator out{IndicatorType::kCidr, {}, *p};
  if (p->len >= 96 && p->addr.isV4()) {
    unsigned v4_len = p->len - 96u;
    if (v4_len == 0) return invalid("CIDR", token, "it matches every IPv4 address");
    if (v4_len < options.min_ipv4_prefix_len) {
      return invalid("over-broad CIDR", token,
                     absl::StrCat("IPv4 prefixes shorter than /", options.min_ipv4_prefix_len,
                                  " are rejected; list the /", options.min_ipv4_prefix_len,
                                  " networks it covers, or lower intel.min_ipv4_prefix_len "
                                  "(vigilctl: --min-ipv4-prefix)"));
    }
    out.text = absl::StrCat(formatIp(p->addr), "/", v4_len);
    return out;
  }
  if (p->len == 0) return invalid("CIDR", token, "it matches every address");
  if (p->len < 96 && maskTo(IpAddr::fromV4(0), p->len) == p->addr) {
    return invalid("over-broad CIDR", token,
                   "it contains every IPv4-mapped address (::ffff:0:0/96)");
  }
  if (p->len < options.min_ipv6_prefix_len) {
    return invalid("over-broad CIDR", token,
                   absl::StrCat("IPv6 prefixes shorter than /", options.min_ipv6_prefix_len,
                                " are rejected; list the /", options.min_ipv6_prefix_len,
                                " networks it covers, or lower intel.min_ipv6_prefix_len "
                                "(vigilctl: --min-ipv6-prefix)"));
  }
  out.text = absl::StrCat(formatIp(p->addr), "/", p->len);
  return out;
}

// Normalizes a host name: lower case, one trailing root dot removed, LDH labels.
// `allow_underscore` is for URL hosts, where underscores occur in real names.
absl::StatusOr<std::string> normalizeDomain(std::string_view token, bool allow_underscore) {
  std::string name = absl::AsciiStrToLower(av(token));
  bool ascii = std::all_of(name.begin(), name.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!ascii) {
    // A character that ends a host name in event text could never be matched inside one.
    for (size_t i = 0; i < name.size();) {
      const CodePoint cp = decodeUtf8At(name, i);
      if (cp.length == 0) break;  // toAsciiDomain() reports it
      if (cp.cp >= 0x80 && breaksHostName(cp.cp)) {
        return invalid("character that ends host names in domain name", token,
                       absl::StrFormat("events never hold U+%04X inside a host name, so the name "
                                       "could not match; remove it",
                                       cp.cp));
      }
      i += cp.length;
    }
    std::optional<std::string> converted = toAsciiDomain(name);
    if (!converted) {
      return invalid("domain name with invalid UTF-8", token,
                     "write it in UTF-8 or in punycode (xn--) form");
    }
    name = std::move(*converted);
  }
  for (char c : name) {
    bool ok = absl::ascii_isalnum(c) || c == '-' || c == '.' || (allow_underscore && c == '_');
    if (!ok) {
      return invalid(absl::StrCat("invalid character '", std::string(1, c), "' in"), token,
                     "a domain name has labels of letters, digits and '-' separated by '.'");
    }
  }
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.size() > kMaxDomainLength) {
    return invalid(absl::StrCat("domain name of ", name.size(), " bytes"), token,
                   absl::StrCat("the maximum is ", kMaxDomainLength));
  }
  std::vector<std::string_view> labels = splitAny(name, ".", /*skip_empty=*/false);
  for (std::string_view label : labels) {
    if (label.empty()) return invalid("empty label in domain name", token, "");
    if (label.size() > kMaxLabelLength) {
      return invalid(absl::StrCat("label of ", label.size(), " bytes in domain name"), token,
                     absl::StrCat("the maximum is ", kMaxLabelLength));
    }
    if (label.front() == '-' || label.back() == '-') {
      return invalid("label starting or ending with '-' in domain name", token, "");
    }
  }
  if (labels.size() < 2) {
    return invalid("name without a dot", token,
                   "a domain indicator needs at least two labels (name.tld)");
  }
  if (allDigits(labels.back())) {
    return invalid("invalid IPv4 address", token, "a domain cannot end in a numeric label");
  }
  if (labels.back() == "localhost" || name == "localhost.localdomain") {
    return invalid("local host name", token, "it names this machine, not a remote host");
  }
  return name;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes percent-escapes of unreserved characters (ALPHA / DIGIT / "-" / "." / "_" /
// "~") and writes the hex digits of other escapes in upper case (RFC 3986 section
// 6.2.2). Equivalent spellings of a path then give one indicator.
std::string normalizePercentEncoding(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    int high = i + 2 < text.size() && text[i] == '%' ? hexValue(text[i + 1]) : -1;
    int low = high >= 0 ? hexValue(text[i + 2]) : -1;
    if (low < 0) {
      out += text[i];
      continue;
    }
    auto decoded = static_cast<char>(high * 16 + low);
    if (absl::ascii_isalnum(decoded) || decoded == '-' || decoded == '.' || decoded == '_' ||
        decoded == '~') {
      out += decoded;
    } else {
      out += '%';
      out += absl::ascii_toupper(text[i + 1]);
      out += absl::ascii_toupper(text[i + 2]);
    }
    i += 2;
  }
  return out;
}

uint16_t defaultPort(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return 0;
}

absl::StatusOr<std::string> normalizeUrlHost(std::string_view host, std::string_view token) {
  if (host.empty()) return invalid("URL without a host", token, "");
  if (host.front() == '[') {
    std::optional<IpAddr> addr = parseIp(host);
    if (host.back() != ']' || !addr) return invalid("invalid IPv6 host in URL", token, "");
    return absl::AsciiStrToLower(av(host));
  }
  if (parseIp(host)) return std::string(host);
  return normalizeDomain(host, /*allow_underscore=*/true);
}

absl::StatusOr<ParsedIndicator> parseUrl(std::string_view token) {
  size_t sep = token.find("://");
  std::string scheme = absl::AsciiStrToLower(av(token.substr(0, sep)));
  bool scheme_ok = !scheme.empty() && absl::ascii_isalpha(scheme[0]) &&
                   std::all_of(scheme.begin(), scheme.end(), [](char c) {
                     return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
                   });
  if (!scheme_ok) return invalid("invalid URL scheme in", token, "expected e.g. http://HOST/");
  for (char c : token) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return invalid("control character in URL", token, "");
  }

  std::string_view rest = token.substr(sep + 3);
  size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = rest.substr(authority_end);
  size_t at = authority.rfind('@');
  std::string_view userinfo = at == std::string_view::npos ? "" : authority.substr(0, at + 1);
  std::string_view host_port = authority.substr(userinfo.size());

  std::string_view host = host_port;
  std::string_view port;
  size_t colon = host_port.rfind(':');
  size_t close = host_port.rfind(']');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  uint32_t port_number = 0;
  if (!port.empty() &&
      (!allDigits(port) || !absl::SimpleAtoi(av(port), &port_number) || port_number > 65535)) {
    return invalid("invalid port in URL", token, "a port is a number from 0 to 65535");
  }
  absl::StatusOr<std::string> normal_host = normalizeUrlHost(host, token);
  if (!normal_host.ok()) return normal_host.status();

  std::string text = absl::StrCat(scheme, "://", av(userinfo), *normal_host);
  if (!port.empty() && port_number != defaultPort(scheme)) absl::StrAppend(&text, ":", av(port));
  absl::StrAppend(&text, normalizePercentEncoding(tail));
  return ParsedIndicator{IndicatorType::kUrl, std::move(text), {}};
}

}  // namespace

absl::StatusOr<ListLine> splitListLine(std::string_view line) {
  line = trim(line);
  if (line.empty() || line.front() == '#') return ListLine{};
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '#' && isBlank(line[i - 1])) {
      line = trim(line.substr(0, i));
      break;
    }
  }

  // LOKI lists write "INDICATOR;DESCRIPTION"; a URL may contain ';' itself.
  size_t semicolon = line.find(';');
  if (semicolon != std::string_view::npos &&
      line.substr(0, semicolon).find("://") == std::string_view::npos) {
    line = trim(line.substr(0, semicolon));
    if (line.empty()) {
      return absl::InvalidArgumentError("no indicator before ';'");
    }
  }

  std::vector<std::string_view> tokens = splitAny(line, " \t", /*skip_empty=*/true);
  if (tokens.size() == 1) return ListLine{std::move(tokens), false};
  if (isHostsAddress(tokens[0])) {
    tokens.erase(tokens.begin());
    return ListLine{std::move(tokens), true};
  }
  if (tokens.size() == 2 && allDigits(tokens[1])) {
    tokens.pop_back();
    return ListLine{std::move(tokens), false};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected text '", av(tokens[1]),
                   "' after the indicator; a line contains one indicator, "
                   "optionally followed by a count, ' # comment' or ';description'"));
}

absl::StatusOr<ParsedIndicator> parseIndicator(std::string_view token,
                                               const BuilderOptions& options) {
  if (token.size() > kMaxUrlLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("indicator of ", token.size(), " bytes; the maximum is ", kMaxUrlLength));
  }
  if (token.find("://") != std::string_view::npos) return parseUrl(token);
  if (token.find('/') != std::string_view::npos) return parseCidr(token, options);

  // A ':' occurs in no domain or hash, so the token can only be an address. Brackets are
  // taken as an address only among address characters; regular expressions have them too.
  bool address_chars = std::all_of(token.begin(), token.end(), [](char c) {
    return absl::ascii_isxdigit(c) || c == '.' || c == ':' || c == '[' || c == ']';
  });
  bool brackets = token.find_first_of("[]") != std::string_view::npos;
  bool colon = token.find(':') != std::string_view::npos;
  if (colon && !address_chars) {
    return invalid("invalid IPv6 address", token,
                   "':' occurs only in addresses, which use hex digits, '.' and ':'");
  }
  if (colon || (address_chars && brackets)) {
    if (absl::Status s = checkBareAddress(token); !s.ok()) return s;
    std::optional<IpAddr> addr = parseIp(token);
    if (!addr) return invalid("invalid IPv6 address", token, "");
    IndicatorType type = addr->isV4() ? IndicatorType::kIpv4 : IndicatorType::kIpv6;
    return ParsedIndicator{type, formatIp(*addr), IpPrefix{*addr, 128}};
  }
  if (std::optional<IpAddr> addr = parseIp(token)) {
    return ParsedIndicator{IndicatorType::kIpv4, formatIp(*addr), IpPrefix{*addr, 128}};
  }

  if (allHex(token)) {
    switch (token.size()) {
      case 32:
        return ParsedIndicator{IndicatorType::kMd5, absl::AsciiStrToLower(av(token)), {}};
      case 40:
        return ParsedIndicator{IndicatorType::kSha1, absl::AsciiStrToLower(av(token)), {}};
      case 64:
        return ParsedIndicator{IndicatorType::kSha256, absl::AsciiStrToLower(av(token)), {}};
      default:
        break;
    }
    if (token.size() >= 16) {
      return invalid(absl::StrCat("hex string of ", token.size(), " digits"), token,
                     "MD5, SHA-1 and SHA-256 hashes have 32, 40 or 64 hex digits");
    }
  }
  absl::StatusOr<std::string> domain = normalizeDomain(token, /*allow_underscore=*/false);
  if (!domain.ok()) return domain.status();
  return ParsedIndicator{IndicatorType::kDomain, std::move(*domain), {}};
}

absl::StatusOr<ParsedIndicator> parseEmail(std::string_view token) {
  size_t at = token.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == token.size()) {
    return invalid("invalid email address", token, "expected LOCAL@DOMAIN");
  }
  std::string_view local = token.substr(0, at);
  for (char c : local) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f || c == '@' || c == '<' || c == '>' || c == ',') {
      return invalid("invalid character in email address", token,
                     "the local part has no spaces, control characters or '@<>,'");
    }
  }
  absl::StatusOr<std::string> domain = normalizeDomain(token.substr(at + 1), false);
  if (!domain.ok()) return domain.status();
  return ParsedIndicator{IndicatorType::kEmail,
                         absl::StrCat(absl::AsciiStrToLower(av(local)), "@", *domain), {}};
}

absl::StatusOr<ParsedIndicator> parseFilename(std::string_view token) {
  token = trim(token);
  if (token.empty()) return invalid("empty file name", token, "");
  if (token.size() > kMaxFilenameLength) {
    return invalid(absl::StrCat("file name of ", token.size(), " bytes"), token,
                   absl::StrCat("the maximum is ", kMaxFilenameLength));
  }
  if (token.find_first_of("/\\") != std::string_view::npos) {
    return invalid("file name with a directory", token,
                   "give the name alone; use a regex indicator to match paths");
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return invalid("control character in file name", token, "");
    }
  }
  return ParsedIndicator{IndicatorType::kFilename, absl::AsciiStrToLower(av(token)), {}};
}

absl::StatusOr<ParsedIndicator> parseRegex(std::string_view token) {
  if (token.empty()) return invalid("empty regular expression", token, "");
  if (token.size() > kMaxRegexLength) {
    return invalid(absl::StrCat("regular expression of ", token.size(), " bytes"), token,
                   absl::StrCat("the maximum is ", kMaxRegexLength));
  }
  std::string expression(token);
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* error = nullptr;
  hs_error_t rc = hs_expression_info(expression.c_str(), kRegexFlags, &info, &error);
  if (rc != HS_SUCCESS) {
    std::string message = error != nullptr ? error->message : "unknown error";
    hs_free_compile_error(error);
    return invalid("regular expression", token,
                   absl::StrCat("Hyperscan rejected it: ", message));
  }
  bool matches_empty = info->min_width == 0;
  std::free(info);
  if (matches_empty) {
    return invalid("regular expression", token,
                   "it can match an empty string, which would hit every event");
  }
  return ParsedIndicator{IndicatorType::kRegex, std::move(expression), {}};
}

std::optional<IndicatorType> parseIndicatorTypeName(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(av(trim(name)));
  for (size_t i = 0; i < kIndicatorTypeCount; ++i) {
    auto type = static_cast<IndicatorType>(i);
    if (indicatorTypeName(type) == lower) return type;
  }
  return std::nullopt;
}

absl::StatusOr<ParsedIndicator> parseTypedIndicator(IndicatorType type, std::string_view token,
                                                    const BuilderOptions& options) {
  switch (type) {
    case IndicatorType::kEmail:
      return parseEmail(trim(token));
    case IndicatorType::kFilename:
      return parseFilename(token);
    case IndicatorType::kRegex:
      return parseRegex(token);
    default:
      break;
  }
  token = trim(token);
  size_t hex_digits = type == IndicatorType::kMd5    ? 32
                      : type == IndicatorType::kSha1 ? 40
                      : type == IndicatorType::kSha256 ? 64
                                                       : 0;
  if (hex_digits != 0 && (token.size() != hex_digits || !allHex(token))) {
    return invalid(absl::StrCat("invalid ", av(indicatorTypeName(type))), token,
                   absl::StrCat("expected ", hex_digits, " hex digits"));
  }
  absl::StatusOr<ParsedIndicator> parsed = parseIndicator(token, options);
  if (!parsed.ok()) return parsed;
  bool declared_ip = type == IndicatorType::kIpv4 || type == IndicatorType::kIpv6 ||
                     type == IndicatorType::kCidr;
  bool parsed_ip = parsed->type == IndicatorType::kIpv4 ||
                   parsed->type == IndicatorType::kIpv6 || parsed->type == IndicatorType::kCidr;
  if (parsed->type == type || (declared_ip && parsed_ip)) return parsed;
  return invalid(absl::StrCat("value declared as ", av(indicatorTypeName(type))), token,
                 absl::StrCat("it reads as a ", av(indicatorTypeName(parsed->type))));
}

}  // namespace vigil::intel::internal
