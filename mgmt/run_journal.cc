#include "mgmt/run_journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/clock.h"

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
      absl::StrCat("run journal ", path, ": ", operation, " failed: ", std::strerror(errno)));
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

// ---------------------------------------------------------------------------------------
// RunJournal

namespace {

// Record layout, little-endian as the host writes it (the file never leaves the machine):
//   u32 magic "VRJ3" | u32 payload bytes | u64 segment generation |
//   u64 checksum of the generation and the payload | payload
// Payloads begin with a type byte:
//   start:   i64 run id | i64 created_ns | i64 stored steps | u8 first | i64 inbox id |
//            7 x text: playbook, hash, tenant, alert id, rule id, alert JSON, resume JSON
//   call:    2 x text: key, action
//   outcome: u8 ok | i32 status code | i64 case id | 3 x text: key, error, value JSON
// where text is u32 length and bytes. A segment is its start record and the records of the
// same generation after it; older records past its end belong to earlier segments.
// Earlier builds wrote records with the magic "VRJ2" and an FNV-1a checksum taken byte by
// byte. Those are still read, so a journal left behind by an upgrade is recovered.
constexpr uint32_t kSegmentMagic = 0x334a5256;       // "VRJ3"
constexpr uint32_t kSegmentMagicFnv1a = 0x324a5256;  // "VRJ2"
constexpr size_t kRecordHeaderBytes = 24;
constexpr uint8_t kStartRecord = 1;
constexpr uint8_t kCallRecord = 2;
constexpr uint8_t kOutcomeRecord = 3;

uint64_t fnv1aChecksum(uint64_t generation, const char* payload, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char>(data[i]);
      hash *= 1099511628211ull;
    }
  };
  mix(reinterpret_cast<const char*>(&generation), sizeof(generation));
  mix(payload, size);
  return hash;
}

// Computes the checksum of "VRJ3" records, eight bytes per step. Each step is a bijection
// of the running value, so a record that differs in one word (a torn write) always fails.
// FNV-1a waits for one multiply per byte, which made it a large part of a run's dispatch.
uint64_t recordChecksum(uint64_t generation, const char* payload, size_t size) {
  constexpr uint64_t kMultiplier = 0x9e3779b97f4a7c15ull;
  uint64_t hash = 14695981039346656037ull ^ size;
  auto step = [&hash](uint64_t word) {
    hash = (hash ^ word) * kMultiplier;
    hash ^= hash >> 32;
  };
  step(generation);
  size_t at = 0;
  for (; at + sizeof(uint64_t) <= size; at += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, payload + at, sizeof(word));
    step(word);
  }
  if (at < size) {
    uint64_t word = 0;
    std::memcpy(&word, payload + at, size - at);
    step(word);
  }
  hash ^= hash >> 29;
  return hash * kMultiplier;
}

// Writes records into the journal's mapping; the caller made room for them first.
class RecordWriter {
 public:
  explicit RecordWriter(char* out) : out_(out) {}

  template <typename T>
  void raw(T value) {
    put(out_, at_, value);
  }
  void text(std::string_view text) {
    raw(static_cast<uint32_t>(text.size()));
    std::memcpy(out_ + at_, text.data(), text.size());
    at_ += text.size();
  }
  size_t size() const { return at_; }

 private:
  char* out_;
  size_t at_ = 0;
};

size_t textBytes(std::string_view text) { return sizeof(uint32_t) + text.size(); }

size_t pageBytes() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

size_t roundUpToPage(size_t bytes) { return (bytes + pageBytes() - 1) / pageBytes() * pageBytes(); }

// Allocates the file's blocks for [offset, offset + bytes), so a store into the mapping
// never needs a block the disk no longer has (that would raise SIGBUS).
absl::Status reserveBlocks(int fd, size_t offset, size_t bytes, const std::string& path) {
  const int error =
      ::posix_fallocate(fd, static_cast<off_t>(offset), static_cast<off_t>(bytes));
  if (error == 0) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("run journal ", path, ": cannot reserve ", bytes,
                                             " bytes: ", std::strerror(error),
                                             "; free space on the disk of the runs database"));
}

bool takeText(const char* in, size_t size, size_t& at, std::string& out) {
  uint32_t length = 0;
  if (!take(in, size, at, length) || length > size - at) return false;
  out.assign(in + at, length);
  at += length;
  return true;
}

bool parseStart(const char* p, size_t size, JournalSegment& out) {
  size_t at = 1;
  uint8_t first = 0;
  if (!take(p, size, at, out.run_id) || !take(p, size, at, out.created_ns) ||
      !take(p, size, at, out.stored_steps) || !take(p, size, at, first) ||
      !take(p, size, at, out.inbox_id)) {
    return false;
  }
  out.first = first != 0;
  for (std::string* text : {&out.playbook, &out.playbook_hash, &out.tenant, &out.alert_id,
                            &out.rule_id, &out.alert_json, &out.resume_json}) {
    if (!takeText(p, size, at, *text)) return false;
  }
  return out.run_id > 0;
}

bool parseOutcome(const char* p, size_t size, RecordedAction& out) {
  size_t at = 1;
  uint8_t ok = 0;
  int32_t code = 0;
  if (!take(p, size, at, ok) || !take(p, size, at, code) || !take(p, size, at, out.case_id)) {
    return false;
  }
  out.ok = ok != 0;
  out.code = code;
  return takeText(p, size, at, out.key) && takeText(p, size, at, out.error) &&
         takeText(p, size, at, out.value_json);
}

// The next record at `at` of `data`: its generation and payload. False at the end of the
// file or at a record that is torn or fails its checksum.
bool nextRecord(const std::string& data, size_t& at, uint64_t& generation,
                std::string_view& payload) {
  if (data.size() - at < kRecordHeaderBytes) return false;
  size_t h = 0;
  uint32_t magic = 0, payload_bytes = 0;
  uint64_t checksum = 0;
  const char* header = data.data() + at;
  take(header, kRecordHeaderBytes, h, magic);
  take(header, kRecordHeaderBytes, h, payload_bytes);
  take(header, kRecordHeaderBytes, h, generation);
  take(header, kRecordHeaderBytes, h, checksum);
  if ((magic != kSegmentMagic && magic != kSegmentMagicFnv1a) || payload_bytes == 0 ||
      payload_bytes > data.size() - at - kRecordHeaderBytes) {
    return false;
  }
  const char* body = header + kRecordHeaderBytes;
  const uint64_t expected = magic == kSegmentMagic ? recordChecksum(generation, body, payload_bytes)
                                                   : fnv1aChecksum(generation, body, payload_bytes);
  if (expected != checksum) return false;
  payload = std::string_view(body, payload_bytes);
  at += kRecordHeaderBytes + payload_bytes;
  return true;
}

}  // namespace

RunJournal::RunJournal(std::string path, int fd, bool sync, uint64_t generation, char* mapping,
                       size_t capacity)
    : path_(std::move(path)),
      fd_(fd),
      sync_(sync),
      generation_(generation),
      mapping_(mapping),
      capacity_(capacity) {}

RunJournal::~RunJournal() {
  ::munmap(mapping_, capacity_);
  ::close(fd_);
}

absl::StatusOr<std::unique_ptr<RunJournal>> RunJournal::open(const std::string& path, bool sync) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open run journal ", path, ": ",
                                               std::strerror(errno),
                                               "; check that the folder is writable"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    absl::Status error = errnoError("fstat", path);
    ::close(fd);
    return error;
  }
  // Never shrunk, so records of a segment that an earlier process left stay readable.
  const size_t capacity =
      std::max(kInitialBytes, roundUpToPage(static_cast<size_t>(std::max<off_t>(st.st_size, 0))));
  if (absl::Status reserved = reserveBlocks(fd, 0, capacity, path); !reserved.ok()) {
    ::close(fd);
    return reserved;
  }
  void* mapping = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    absl::Status error = errnoError("mmap", path);
    ::close(fd);
    return error;
  }
  if (sync) {
    // The file's size and name must survive power loss too.
    if (::fdatasync(fd) != 0) {
      absl::Status error = errnoError("fdatasync", path);
      ::munmap(mapping, capacity);
      ::close(fd);
      return error;
    }
    std::string folder = std::filesystem::path(path).parent_path().string();
    int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  // Generations only have to differ from those of records already in the file.
  uint64_t generation = static_cast<uint64_t>(RealClock::instance().nowNs());
  return std::unique_ptr<RunJournal>(
      new RunJournal(path, fd, sync, generation, static_cast<char*>(mapping), capacity));
}

absl::StatusOr<std::optional<JournalSegment>> RunJournal::read(const std::string& path) {
  absl::StatusOr<std::vector<JournalSegment>> segments = readAll(path);
  if (!segments.ok()) return segments.status();
  if (segments->empty()) return std::optional<JournalSegment>();
  return std::optional<JournalSegment>(std::move(segments->front()));
}

absl::StatusOr<std::vector<JournalSegment>> RunJournal::readAll(const std::string& path) {
  std::vector<JournalSegment> segments;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return segments;
    return errnoError("open", path);
  }
  std::string data;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = errnoError("read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    data.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);

  // Segments appended after the first have higher generations. A start record with a
  // generation no higher than the one before it is left over from an earlier, longer
  // group of segments, and ends the list.
  size_t at = 0;
  uint64_t generation = 0;
  std::string_view payload;
  if (!nextRecord(data, at, generation, payload) || payload[0] != kStartRecord) return segments;
  JournalSegment segment;
  if (!parseStart(payload.data(), payload.size(), segment)) return segments;
  segments.push_back(std::move(segment));
  uint64_t next_generation = 0;
  while (nextRecord(data, at, next_generation, payload)) {
    JournalSegment& current = segments.back();
    if (next_generation != generation) {
      if (payload[0] != kStartRecord || next_generation < generation) break;
      JournalSegment next;
      if (!parseStart(payload.data(), payload.size(), next)) break;
      segments.push_back(std::move(next));
      generation = next_generation;
      continue;
    }
    if (payload[0] == kCallRecord) {
      std::string key;
      size_t p = 1;
      if (!takeText(payload.data(), payload.size(), p, key)) break;
      current.started_keys.push_back(std::move(key));
    } else if (payload[0] == kOutcomeRecord) {
      RecordedAction outcome;
      if (!parseOutcome(payload.data(), payload.size(), outcome)) break;
      current.outcomes.push_back(std::move(outcome));
    } else {
      break;
    }
  }
  return segments;
}

absl::Status RunJournal::beginSegment(const JournalSegment& start, bool append) {
  ++generation_;
  if (!append) {
    offset_ = 0;
    unsynced_from_ = 0;
  }
  size_t bytes = 1 + 3 * sizeof(int64_t) + 1 + sizeof(int64_t);
  for (const std::string* text : {&start.playbook, &start.playbook_hash, &start.tenant,
                                  &start.alert_id, &start.rule_id, &start.alert_json,
                                  &start.resume_json}) {
    bytes += textBytes(*text);
  }
  absl::StatusOr<char*> payload = openRecord(bytes);
  if (!payload.ok()) return payload.status();
  RecordWriter out(*payload);
  out.raw(kStartRecord);
  out.raw(start.run_id);
  out.raw(start.created_ns);
  out.raw(start.stored_steps);
  out.raw(static_cast<uint8_t>(start.first ? 1 : 0));
  out.raw(start.inbox_id);
  for (const std::string* text : {&start.playbook, &start.playbook_hash, &start.tenant,
                                  &start.alert_id, &start.rule_id, &start.alert_json,
                                  &start.resume_json}) {
    out.text(*text);
  }
  closeRecord(out.size());
  for (const RecordedAction& outcome : start.outcomes) {
    if (absl::Status st = writeOutcome(outcome); !st.ok()) return st;
  }
  return syncIfDurable();
}

absl::Status RunJournal::recordStart(std::string_view key, std::string_view action) {
  absl::StatusOr<char*> payload = openRecord(1 + textBytes(key) + textBytes(action));
  if (!payload.ok()) return payload.status();
  RecordWriter out(*payload);
  out.raw(kCallRecord);
  out.text(key);
  out.text(action);
  closeRecord(out.size());
  return absl::OkStatus();
}

absl::Status RunJournal::recordOutcome(const RecordedAction& outcome) {
  if (absl::Status st = writeOutcome(outcome); !st.ok()) return st;
  return syncIfDurable();
}

absl::Status RunJournal::writeOutcome(const RecordedAction& outcome) {
  const size_t bytes = 1 + 1 + sizeof(int32_t) + sizeof(int64_t) + textBytes(outcome.key) +
                       textBytes(outcome.error) + textBytes(outcome.value_json);
  absl::StatusOr<char*> payload = openRecord(bytes);
  if (!payload.ok()) return payload.status();
  RecordWriter out(*payload);
  out.raw(kOutcomeRecord);
  out.raw(static_cast<uint8_t>(outcome.ok ? 1 : 0));
  out.raw(static_cast<int32_t>(outcome.code));
  out.raw(outcome.case_id);
  out.text(outcome.key);
  out.text(outcome.error);
  out.text(outcome.value_json);
  closeRecord(out.size());
  return absl::OkStatus();
}

absl::StatusOr<char*> RunJournal::openRecord(size_t payload_bytes) {
  const size_t needed = offset_ + kRecordHeaderBytes + payload_bytes;
  if (payload_bytes > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run journal ", path_, ": a record of ", payload_bytes,
        " bytes is larger than the 4 GiB a record can hold; the alert or result is too large"));
  }
  if (needed > capacity_) {
    if (absl::Status st = grow(needed); !st.ok()) return st;
  }
  return mapping_ + offset_ + kRecordHeaderBytes;
}

void RunJournal::closeRecord(size_t payload_bytes) {
  char* header = mapping_ + offset_;
  const uint64_t checksum =
      recordChecksum(generation_, header + kRecordHeaderBytes, payload_bytes);
  size_t at = 0;
  put(header, at, kSegmentMagic);
  put(header, at, static_cast<uint32_t>(payload_bytes));
  put(header, at, generation_);
  put(header, at, checksum);
  offset_ += kRecordHeaderBytes + payload_bytes;
  // The stores are in the page cache once they leave the CPU, so they survive the end of
  // the process. The fence keeps the compiler from moving them past the connector call.
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

absl::Status RunJournal::grow(size_t needed) {
  const size_t capacity = std::max(capacity_ * 2, roundUpToPage(needed));
  if (absl::Status st = reserveBlocks(fd_, capacity_, capacity - capacity_, path_); !st.ok()) {
    return st;
  }
  void* mapping = ::mremap(mapping_, capacity_, capacity, MREMAP_MAYMOVE);
  if (mapping == MAP_FAILED) return errnoError("mremap", path_);
  mapping_ = static_cast<char*>(mapping);
  capacity_ = capacity;
  return absl::OkStatus();
}

absl::Status RunJournal::syncIfDurable() {
  if (!sync_) return absl::OkStatus();
  // msync with MS_SYNC writes the range's dirty pages and, like fdatasync, the file size.
  const size_t page = pageBytes();
  const size_t from = unsynced_from_ / page * page;
  if (::msync(mapping_ + from, offset_ - from, MS_SYNC) != 0) return errnoError("msync", path_);
  unsynced_from_ = offset_;
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
