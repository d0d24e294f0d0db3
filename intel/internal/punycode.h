// Punycode (RFC 3492) encoding of internationalized domain labels.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vigil::intel::internal {

// Encodes one UTF-8 label as Punycode without the "xn--" prefix ("bücher" gives
// "bcher-kva"). Returns nullopt when `label` is not valid UTF-8 or the result would
// overflow RFC 3492's 32-bit arithmetic.
std::optional<std::string> punycodeEncode(std::string_view label);

// Converts a domain name with non-ASCII labels to its ASCII form: ASCII letters are
// lower-cased and each label with a non-ASCII byte becomes "xn--" + punycodeEncode().
// NOTE: this is not full UTS #46 processing. Non-ASCII characters are not case-folded
// or mapped (no NFC), so "BÜCHER.example" gives "xn--bcher-kva.example" only for the
// lower-case form "ü" and a different label for "Ü". Returns nullopt for invalid UTF-8.
std::optional<std::string> toAsciiDomain(std::string_view name);

}  // namespace vigil::intel::internal
