// Small OpenSSL wrappers for tokens and the audit chain.
#pragma once

#include <openssl/sha.h>

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace vigil::mgmt::internal {

// Incremental SHA-256 on OpenSSL's SHA256_CTX, which is cheaper to reuse than an EVP digest
// context. In a loop, one short digest took 130 ns this way and 240 ns through
// EVP_DigestInit_ex2(). Before a playbook action's first call, where the caches are cold,
// the key digest took about 2 us instead of 3.5 us (bench/playbook_runner_bench). Not
// thread-safe: use one object per thread.
class Sha256 {
 public:
  static constexpr size_t kDigestBytes = 32;

  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(absl::string_view data);
  // Writes the digest of the bytes given to update() since the last finish() and starts
  // the next digest.
  void finish(unsigned char (&digest)[kDigestBytes]);

 private:
  SHA256_CTX ctx_;
};

// Writes `size` bytes as lower-case hex (2 * size characters) to `out`.
void appendHex(const unsigned char* data, size_t size, std::string& out);

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256Hex(absl::string_view data);

// `bytes` bytes from the OpenSSL CSPRNG as lower-case hex (2 * bytes characters).
// Logs and aborts when RAND_bytes fails, which only a broken host causes.
std::string randomHex(size_t bytes);

// Compares two strings in time that depends only on their lengths.
bool constantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace vigil::mgmt::internal
