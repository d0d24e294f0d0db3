// UTF-8 validation and repair for decoded event text.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/arena.h"

namespace vigil::dataplane::internal {

// Returns `text` unchanged when it is valid UTF-8. Otherwise writes a copy into `arena`
// in which every maximal ill-formed subsequence (Unicode 15, section 3.9, "U+FFFD
// substitution of maximal subparts") is replaced by U+FFFD, sets kFlagInvalidUtf8 in
// `flags` and returns the copy. Overlong forms, surrogates and code points above
// U+10FFFF are ill-formed, so C0 AF becomes two U+FFFD and never '/'. When the arena
// is full, returns the valid prefix of `text` and sets kFlagArenaFull as well.
// Allocates only from `arena`.
std::string_view repairUtf8(std::string_view text, Arena& arena, uint32_t& flags);

// True when `text` is valid UTF-8.
bool isValidUtf8(std::string_view text);

// Returns the length of `text` without a character cut off at its end: a lead byte (C2 to
// F4) followed by valid continuation bytes, but fewer than the character needs. Any other
// ending, ill-formed ones included, keeps the whole length. Reads at most the last 3 bytes.
size_t lengthWithoutCutCharacter(std::string_view text);

}  // namespace vigil::dataplane::internal
