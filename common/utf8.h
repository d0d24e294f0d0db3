// UTF-8 sequence decoding shared by the parsers' repair and the log's escaping.
#pragma once

#include <cstddef>
#include <string_view>

namespace vigil {

// Returns the length of the well-formed UTF-8 sequence at text[pos] (1 for ASCII), or,
// when the sequence is ill-formed, the negated length of its maximal subpart (at least 1).
// Overlong forms, surrogates and code points above U+10FFFF are ill-formed. Table 3-7 of
// the Unicode standard gives the allowed range of the second byte for each lead byte.
int utf8SequenceLength(std::string_view text, size_t pos);

// Returns the length of the longest prefix of `text` of at most `max` bytes that does not
// end inside a UTF-8 sequence: a cut at `max` moves back over up to three continuation
// bytes to the start of their character.
size_t utf8PrefixLength(std::string_view text, size_t max);

}  // namespace vigil
