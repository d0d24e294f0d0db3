// SHA256_Init() and its siblings are deprecated in OpenSSL 3.0 but still exported by
// libcrypto; Sha256 uses them for speed (see crypto_util.h).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "mgmt/internal/crypto_util.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <vector>

#include "common/log.h"

namespace vigil::mgmt::internal {
namespace {

std::string toHex(const unsigned char* data, size_t size) {
  std::string out;
  out.reserve(size * 2);
  appendHex(data, size, out);
  return out;
}

}  // namespace

void appendHex(const unsigned char* data, size_t size, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const size_t at = out.size();
  out.resize(at + 2 * size);
  char* hex = out.data() + at;
  for (size_t i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[data[i] >> 4];
    hex[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
}

Sha256::Sha256() { SHA256_Init(&ctx_); }

void Sha256::update(absl::string_view data) { SHA256_Update(&ctx_, data.data(), data.size()); }

void Sha256::finish(unsigned char (&digest)[kDigestBytes]) {
  SHA256_Final(digest, &ctx_);
  SHA256_Init(&ctx_);
}

std::string sha256Hex(absl::string_view data) {
  thread_local Sha256 hasher;
  unsigned char digest[Sha256::kDigestBytes];
  hasher.update(data);
  hasher.finish(digest);
  return toHex(digest, sizeof(digest));
}

std::string randomHex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
    VIGIL_LOG_ERROR("RAND_bytes failed error=\"{}\"; the host has no usable entropy source",
                    logText(ERR_error_string(ERR_get_error(), nullptr)));
    std::abort();
  }
  return toHex(buffer.data(), buffer.size());
}

bool constantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace vigil::mgmt::internal
