// Punycode (RFC 3492) encoding of internationalized domain labels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vigil::intel::internal {

// One UTF-8 sequence: its code point and length in bytes.
struct CodePoint {
  uint32_t cp = 0;
  size_t length = 0;  // 0: not a valid sequence
};

// Decodes the UTF-8 sequence at text[i] (i < text.size()). Overlong forms, surrogates,
// values past U+10FFFF and sequences cut by the end of `text` give a length of 0.
CodePoint decodeUtf8At(std::string_view text, size_t i);

// True for a code point past ASCII that ends a host name in text rather than being a
// letter of an internationalized one. These are Latin-1 punctuation and signs, general
// punctuation (spaces of all widths, dashes, curly quotes, zero-width characters),
// symbols, arrows and box drawing. So are CJK punctuation with the ideographic full stop,
// full-width ASCII punctuation, the byte order mark, specials and the emoji planes. This
// is a coarse stand-in for IDNA 2008's PVALID set. The matcher ends names at them, and
// the feed loader rejects names that hold them, since no event could match such a name.
bool breaksHostName(uint32_t cp);

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

// Maximum label length, in code points, that labelToAscii() takes.
inline constexpr size_t kMaxLabelInput = 256;

// Writes the ASCII form of one label as toAsciiDomain() gives it (ASCII letters
// lower-cased, and "xn--" + punycodeEncode() when a byte is not ASCII) into `out`.
// Returns the length written, or 0 when the label is empty, is not valid UTF-8, has more
// than kMaxLabelInput code points or does not fit. Allocates nothing, for the matcher's
// per-event path.
size_t labelToAscii(std::string_view label, std::span<char> out);

}  // namespace vigil::intel::internal
