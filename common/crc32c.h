// CRC32C (Castagnoli polynomial, reflected), as used by iSCSI and ext4. It detects
// accidental corruption (every error burst of up to 32 bits), not deliberate changes.
#pragma once

#include <cstdint>
#include <string_view>

namespace vigil {

// Returns the CRC32C of the bytes that gave `crc` followed by `bytes`, so
// crc32cExtend(crc32c(a), b) == crc32c(a + b). Uses the SSE4.2 crc32 instruction where
// the CPU has it.
uint32_t crc32cExtend(uint32_t crc, std::string_view bytes);

// Returns the CRC32C of `bytes`.
inline uint32_t crc32c(std::string_view bytes) { return crc32cExtend(0, bytes); }

// The same checksum from a byte table alone, for tests that compare the two.
uint32_t crc32cPortable(std::string_view bytes);

}  // namespace vigil
