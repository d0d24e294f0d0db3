#include "mgmt/run_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vigil::mgmt {
namespace {

// Record layout, little-endian as the host writes it (the file never leaves the machine):
//   u32 magic "VRS1" | u32 payload bytes | u64 FNV-1a of the payload |
//   payload: i64 id | i64 created_ns | 5 x (u16 length, bytes)
constexpr uint32_t kMagic = 0x31535256;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kFieldCount = 5;

uint64_t fnv1a(const char* data, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

template <typename T>
void put(char* out, size_t& at, T value) {
  std::memcpy(out + at, &value, sizeof(value));
  at += sizeof(value);
}

template <typename T>
bool take(const char* in, size_t size, size_t& at, T& value) {
  if (at + sizeof(value) > size) return false;
  std::memcpy(&value, in + at, sizeof(value));
  at += sizeof(value);
  return true;
}

absl::Status errnoError(const char* operation, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat("run start journal ", path, ": ", operation, " failed: ", std::strerror(errno)));
}

// Parses one slot. Returns false when it contains no complete record.
bool parseSlot(const char* slot, RunStart& out) {
  size_t at = 0;
  uint32_t magic = 0, payload_bytes = 0;
  uint64_t checksum = 0;
  take(slot, kHeaderBytes, at, magic);
  take(slot, kHeaderBytes, at, payload_bytes);
  take(slot, kHeaderBytes, at, checksum);
  if (magic != kMagic || payload_bytes > RunStartJournal::kSlotBytes - kHeaderBytes) return false;
  const char* payload = slot + kHeaderBytes;
  if (fnv1a(payload, payload_bytes) != checksum) return false;
  at = 0;
  if (!take(payload, payload_bytes, at, out.id)) return false;
  if (!take(payload, payload_bytes, at, out.created_ns)) return false;
  std::string* fields[kFieldCount] = {&out.playbook, &out.playbook_hash, &out.tenant,
                                      &out.alert_id, &out.rule_id};
  for (std::string* field : fields) {
    uint16_t length = 0;
    if (!take(payload, payload_bytes, at, length) || at + length > payload_bytes) return false;
    field->assign(payload + at, length);
    at += length;
  }
  return out.id > 0;
}

}  // namespace

RunStartJournal::RunStartJournal(std::string path, int fd, bool sync)
    : path_(std::move(path)), fd_(fd), sync_(sync) {}

RunStartJournal::~RunStartJournal() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<RunStartJournal>> RunStartJournal::open(const std::string& path,
                                                                       bool sync) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open run start journal ", path, ": ",
                                               std::strerror(errno),
                                               "; check that the folder is writable"));
  }
  return std::unique_ptr<RunStartJournal>(new RunStartJournal(path, fd, sync));
}

absl::StatusOr<std::vector<RunStart>> RunStartJournal::readAll() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return errnoError("fstat", path_);
  std::vector<RunStart> out;
  std::string slot(kSlotBytes, '\0');
  for (off_t offset = 0; offset + static_cast<off_t>(kHeaderBytes) <= st.st_size;
       offset += kSlotBytes) {
    std::fill(slot.begin(), slot.end(), '\0');
    ssize_t n = ::pread(fd_, slot.data(), kSlotBytes, offset);
    if (n < 0) return errnoError("pread", path_);
    RunStart start;
    if (parseSlot(slot.data(), start)) out.push_back(std::move(start));
  }
  return out;
}

absl::Status RunStartJournal::clear() {
  if (::ftruncate(fd_, 0) != 0) return errnoError("ftruncate", path_);
  if (::fsync(fd_) != 0) return errnoError("fsync", path_);
  return absl::OkStatus();
}

absl::Status RunStartJournal::record(size_t slot, int64_t id, int64_t created_ns,
                                     std::string_view playbook, std::string_view playbook_hash,
                                     std::string_view tenant, std::string_view alert_id,
                                     std::string_view rule_id) {
  char buffer[kSlotBytes];
  char* payload = buffer + kHeaderBytes;
  size_t at = 0;
  put(payload, at, id);
  put(payload, at, created_ns);
  for (std::string_view field : {playbook, playbook_hash, tenant, alert_id, rule_id}) {
    const uint16_t length = static_cast<uint16_t>(std::min(field.size(), kMaxFieldBytes));
    put(payload, at, length);
    std::memcpy(payload + at, field.data(), length);
    at += length;
  }
  static_assert(kHeaderBytes + 16 + kFieldCount * (2 + kMaxFieldBytes) <= kSlotBytes);
  size_t header_at = 0;
  put(buffer, header_at, kMagic);
  put(buffer, header_at, static_cast<uint32_t>(at));
  put(buffer, header_at, fnv1a(payload, at));

  const size_t total = kHeaderBytes + at;
  const off_t offset = static_cast<off_t>(slot * kSlotBytes);
  ssize_t written = ::pwrite(fd_, buffer, total, offset);
  if (written != static_cast<ssize_t>(total)) {
    if (written >= 0) errno = EIO;
    return errnoError("pwrite", path_);
  }
  if (sync_ && ::fdatasync(fd_) != 0) return errnoError("fdatasync", path_);
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
