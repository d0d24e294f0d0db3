#include "mgmt/internal/crypto_util.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

// Logs and aborts: the digest calls fail only when OpenSSL cannot allocate or its default
// provider is missing, and a digest that silently went wrong would corrupt keys and hashes.
[[noreturn]] void digestFailed(const char* call) {
  VIGIL_LOG_ERROR("{} failed for SHA-256 error={}", call,
                  ERR_error_string(ERR_get_error(), nullptr));
  std::abort();
}

// SHA-256 from the default provider, fetched on first use and kept for the process.
const EVP_MD* sha256Algorithm() {
  static const EVP_MD* algorithm = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) digestFailed("EVP_MD_fetch");
    return fetched;
  }();
  return algorithm;
}

}  // namespace

void appendHex(const unsigned char* data, size_t size, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) digestFailed("EVP_MD_CTX_new");
  begin();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::begin() {
  if (EVP_DigestInit_ex2(ctx_, sha256Algorithm(), nullptr) != 1) {
    digestFailed("EVP_DigestInit_ex2");
  }
}

void Sha256::update(absl::string_view data) {
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) digestFailed("EVP_DigestUpdate");
}

void Sha256::finish(unsigned char (&digest)[kDigestBytes]) {
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_, digest, &size) != 1 || size != kDigestBytes) {
    digestFailed("EVP_DigestFinal_ex");
  }
  begin();
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
    VIGIL_LOG_ERROR("RAND_bytes failed error={}; the host has no usable entropy source",
                    ERR_error_string(ERR_get_error(), nullptr));
    std::abort();
  }
  return toHex(buffer.data(), buffer.size());
}

bool constantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace vigil::mgmt::internal
