#include "intel/internal/hs_cache.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vigil::intel::internal {
namespace {

namespace fs = std::filesystem;

// A file starts with kMagic and one ASCII digit, the format version. Version 1 contained one
// database; version 2 contains kHsDatabaseCount, each as a 64-bit size (0 for none) and
// the serialized bytes.
constexpr char kMagic[7] = {'V', 'G', 'L', 'H', 'S', 'D', 'B'};
constexpr char kFormatVersion = '2';
constexpr std::string_view kPrefix = "intel-";
constexpr std::string_view kSuffix = ".hsdb";

std::string hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xF]);
  }
  return out;
}

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

bool getU32(const std::string& in, size_t& pos, uint32_t& v) {
  if (in.size() - pos < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(in[pos + i])} << (8 * i);
  pos += 4;
  return true;
}

bool getU64(const std::string& in, size_t& pos, uint64_t& v) {
  if (in.size() - pos < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in[pos + i])} << (8 * i);
  pos += 8;
  return true;
}

std::string sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string entryPath(const std::string& dir, const std::string& key) {
  return dir + "/" + std::string(kPrefix) + key + std::string(kSuffix);
}

}  // namespace

std::string hsCacheKey(const std::vector<std::string>& expressions,
                       const std::vector<unsigned>& flags, const std::vector<unsigned>& ids) {
  // EVP, not the SHA256_* calls that OpenSSL 3 deprecates.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  const char* version = hs_version();
  EVP_DigestUpdate(ctx, version, std::strlen(version) + 1);
  hs_platform_info_t platform{};
  if (hs_populate_platform(&platform) == HS_SUCCESS) {
    EVP_DigestUpdate(ctx, &platform.tune, sizeof(platform.tune));
    EVP_DigestUpdate(ctx, &platform.cpu_features, sizeof(platform.cpu_features));
  }
  std::string record;
  for (size_t i = 0; i < expressions.size(); ++i) {
    record.clear();
    putU32(record, ids[i]);
    putU32(record, flags[i]);
    putU64(record, expressions[i].size());
    record += expressions[i];
    EVP_DigestUpdate(ctx, record.data(), record.size());
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  return hex(digest, sizeof(digest));
}

bool hsCacheLoad(const std::string& dir, const std::string& key, HsCacheEntry& entry,
                 std::string& error) {
  const std::string path = entryPath(dir, key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;  // a plain miss
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::array<hs_database_t*, kHsDatabaseCount> databases{};
  auto rejected = [&](const std::string& why) {
    for (hs_database_t*& db : databases) {
      hs_free_database(db);
      db = nullptr;
    }
    error = absl::StrCat("cache file ", path, " ", why, "; it was removed and the patterns "
                         "compile again");
    std::error_code ignored;
    fs::remove(path, ignored);
    return false;
  };
  constexpr size_t kDigest = SHA256_DIGEST_LENGTH;
  constexpr size_t kHeader = sizeof(kMagic) + 1;
  if (file.size() < kHeader + kDigest || std::memcmp(file.data(), kMagic, sizeof(kMagic))) {
    return rejected("has no valid header");
  }
  if (file[sizeof(kMagic)] != kFormatVersion) {
    return rejected(absl::StrCat("has cache format version ",
                                 absl::CHexEscape(file.substr(sizeof(kMagic), 1)),
                                 ", but this build reads version ",
                                 std::string(1, kFormatVersion)));
  }
  const std::string_view body(file.data(), file.size() - kDigest);
  if (sha256(body) != file.substr(file.size() - kDigest)) return rejected("fails its checksum");
  size_t pos = kHeader;
  const std::string payload(body);
  uint32_t rejected_count = 0;
  if (!getU32(payload, pos, rejected_count) || rejected_count > (payload.size() - pos) / 4) {
    return rejected("has a bad rejected-pattern count");
  }
  entry.rejected_ids.clear();
  for (uint32_t i = 0; i < rejected_count; ++i) {
    uint32_t id = 0;
    getU32(payload, pos, id);
    entry.rejected_ids.push_back(id);
  }
  for (size_t kind = 0; kind < kHsDatabaseCount; ++kind) {
    uint64_t size = 0;
    if (!getU64(payload, pos, size) || size > payload.size() - pos) {
      return rejected("has a bad database size");
    }
    if (size > 0 &&
        hs_deserialize_database(payload.data() + pos, size, &databases[kind]) != HS_SUCCESS) {
      databases[kind] = nullptr;
      return rejected("was refused by Hyperscan");
    }
    pos += size;
  }
  if (pos != payload.size()) return rejected("has bytes after its databases");
  entry.databases = databases;
  return true;
}

bool hsCacheStore(const std::string& dir, const std::string& key,
                  std::span<const hs_database_t* const, kHsDatabaseCount> databases,
                  const std::vector<unsigned>& rejected_ids, size_t keep, std::string& error) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    error = absl::StrCat("cannot create cache folder ", dir, ": ", ec.message());
    return false;
  }
  std::string file(kMagic, sizeof(kMagic));
  file.push_back(kFormatVersion);
  putU32(file, static_cast<uint32_t>(rejected_ids.size()));
  for (unsigned id : rejected_ids) putU32(file, id);
  for (const hs_database_t* database : databases) {
    if (database == nullptr) {
      putU64(file, 0);
      continue;
    }
    char* bytes = nullptr;
    size_t length = 0;
    if (hs_serialize_database(database, &bytes, &length) != HS_SUCCESS) {
      error = "Hyperscan could not serialize the database";
      return false;
    }
    putU64(file, length);
    file.append(bytes, length);
    std::free(bytes);
  }
  file += sha256(file);

  const std::string path = entryPath(dir, key);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
    out.flush();
    if (!out) {
      error = absl::StrCat("cannot write ", temp, ": ", std::strerror(errno));
      fs::remove(temp, ec);
      return false;
    }
  }
  fs::rename(temp, path, ec);
  if (ec) {
    error = absl::StrCat("cannot rename ", temp, " to ", path, ": ", ec.message());
    fs::remove(temp, ec);
    return false;
  }

  // Keep the newest entries: a reload that changes the patterns leaves the old entry,
  // which serves a rollback, but the folder must not grow without bound.
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string name = item.path().filename().string();
    if (name.starts_with(kPrefix) && name.ends_with(kSuffix)) {
      entries.emplace_back(item.last_write_time(ec), item.path());
    }
  }
  if (entries.size() > keep) {
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = keep; i < entries.size(); ++i) fs::remove(entries[i].second, ec);
  }
  return true;
}

}  // namespace vigil::intel::internal
