#include "common/event.h"

#include <charconv>
#include <cstring>
#include <new>

#include "common/time.h"

namespace vigil {
namespace {

std::string_view writeInt(int64_t value, std::array<char, 64>& scratch) {
  auto [end, ec] = std::to_chars(scratch.data(), scratch.data() + scratch.size(), value);
  (void)ec;
  return {scratch.data(), static_cast<size_t>(end - scratch.data())};
}

std::string_view writeIp(const IpAddr& addr, std::array<char, 64>& scratch) {
  return {scratch.data(), formatIp(addr, scratch.data(), scratch.size())};
}

std::string_view writeTime(int64_t ns, std::array<char, 64>& scratch) {
  return {scratch.data(), formatRfc3339(ns, scratch.data(), scratch.size())};
}

std::optional<std::string_view> nonEmpty(std::string_view v) {
  if (v.empty()) return std::nullopt;
  return v;
}

constexpr std::array<std::string_view, 18> kCanonicalNames = {
    "",
    "@timestamp",
    "event.created",
    "host.name",
    "process.name",
    "process.pid",
    "log.syslog.msgid",
    "log.syslog.facility.code",
    "log.syslog.severity.code",
    "message",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "user.name",
    "event.action",
    "event.outcome",
    "tenant",
};

// Picks the only canonical name that `name` can be, from its length and (where two or
// three names share a length) one character that differs between them. That pair is a
// perfect hash of the 17 names, so one comparison confirms or rejects the candidate.
CanonicalField canonicalCandidate(std::string_view name) {
  using C = CanonicalField;
  switch (name.size()) {
    case 6: return C::kTenant;
    case 7: return C::kMessage;
    case 9:
      if (name[0] == 'h') return C::kHostName;
      if (name[0] == 's') return C::kSourceIp;
      return C::kUserName;
    case 10: return C::kTimestamp;
    case 11: return name[0] == 'p' ? C::kProcessPid : C::kSourcePort;
    case 12: return name[0] == 'p' ? C::kProcessName : C::kAction;
    case 13: return name[6] == 'c' ? C::kCreated : C::kOutcome;
    case 14: return C::kDestinationIp;
    case 16: return name[0] == 'l' ? C::kMsgid : C::kDestinationPort;
    case 24: return name[11] == 'f' ? C::kFacility : C::kSeverity;
    default: return C::kNone;
  }
}

CanonicalField canonicalId(std::string_view name) {
  CanonicalField candidate = canonicalCandidate(name);
  if (kCanonicalNames[static_cast<size_t>(candidate)] != name) return CanonicalField::kNone;
  return candidate;
}

uint64_t mixWord(uint64_t h, uint64_t word) {
  h = (h ^ word) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 31);
}

}  // namespace

std::string_view formatName(EventFormat f) {
  switch (f) {
    case EventFormat::kRfc3164: return "rfc3164";
    case EventFormat::kRfc5424: return "rfc5424";
    case EventFormat::kJson: return "json";
    case EventFormat::kRaw: return "raw";
    case EventFormat::kCef: return "cef";
    case EventFormat::kLeef: return "leef";
    case EventFormat::kUnknown: break;
  }
  return "unknown";
}

std::string_view indicatorTypeName(IndicatorType t) {
  switch (t) {
    case IndicatorType::kIpv4: return "ipv4";
    case IndicatorType::kIpv6: return "ipv6";
    case IndicatorType::kCidr: return "cidr";
    case IndicatorType::kDomain: return "domain";
    case IndicatorType::kUrl: return "url";
    case IndicatorType::kMd5: return "md5";
    case IndicatorType::kSha1: return "sha1";
    case IndicatorType::kSha256: return "sha256";
    case IndicatorType::kEmail: return "email";
    case IndicatorType::kFilename: return "filename";
    case IndicatorType::kRegex: return "regex";
  }
  return "unknown";
}

std::span<const std::string_view> Event::canonicalNames() {
  return std::span<const std::string_view>(kCanonicalNames).subspan(1);  // [0] is kNone's ""
}

uint32_t Event::fieldHash(std::string_view name) {
  // Eight bytes per step with a multiply-xorshift mix (the constants of splitmix64), so
  // the short dotted names of events take two or three steps.
  uint64_t h = 0x9e3779b97f4a7c15ull ^ name.size();
  size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, name.data() + i, 8);
    h = mixWord(h, word);
  }
  if (i < name.size()) {
    uint64_t word = 0;
    std::memcpy(&word, name.data() + i, name.size() - i);
    h = mixWord(h, word);
  }
  h *= 0x94d049bb133111ebull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

FieldRef Event::resolve(std::string_view name) {
  FieldRef ref;
  ref.name = name;
  ref.canonical = canonicalId(name);
  if (ref.canonical == CanonicalField::kNone) ref.hash = fieldHash(name);
  return ref;
}

void Event::reset() {
  raw = {};
  receive_ns = 0;
  source_id = 0;
  vlan = 0;
  peer.reset();
  tenant = {};
  format = EventFormat::kUnknown;
  flags = 0;
  timestamp_ns = 0;
  facility = -1;
  severity = -1;
  // One assignment per member: a chained `a = b = {}` reads each member back from the
  // one just written, and those reloads wait on the stores (no store forwarding for the
  // 16-byte views).
  host = {};
  app = {};
  procid = {};
  msgid = {};
  structured_data = {};
  message = {};
  src_ip.reset();
  dst_ip.reset();
  src_port = 0;
  dst_port = 0;
  user = {};
  action = {};
  outcome = {};
  field_count = 0;
  overflow_head_ = overflow_tail_ = nullptr;
  overflow_count_ = 0;
  if (indexed_count_ != 0) {
    field_slots_.fill(0);
    indexed_count_ = 0;
  }
  hit_count = 0;
  arena.reset();
}

void Event::indexFields() const {
  if (indexed_count_ == field_count) return;
  // A parser lowered field_count after the last indexing, so start again.
  if (indexed_count_ > field_count) invalidateFieldIndex();
  for (size_t i = indexed_count_; i < field_count; ++i) {
    field_hashes_[i] = fieldHash(fields[i].name);
    indexField(i);
  }
  indexed_count_ = field_count;
}

// Inserts fields[index] unless an earlier field has the same name, so the first wins.
void Event::indexField(size_t index) const {
  const uint32_t hash = field_hashes_[index];
  size_t slot = hash & (kFieldSlots - 1);
  while (field_slots_[slot] != 0) {
    const size_t other = field_slots_[slot] - 1u;
    if (field_hashes_[other] == hash && fields[other].name == fields[index].name) return;
    slot = (slot + 1) & (kFieldSlots - 1);
  }
  field_slots_[slot] = static_cast<uint8_t>(index + 1);
}

bool Event::addOverflowField(std::string_view name, std::string_view value) {
  flags |= kFlagFieldsOverflow;
  if (overflow_tail_ == nullptr || overflow_tail_->count == kOverflowChunkFields) {
    char* memory = arena.allocAligned(sizeof(OverflowChunk), alignof(OverflowChunk));
    if (memory == nullptr) {
      flags |= kFlagArenaFull;
      return false;
    }
    auto* chunk = new (memory) OverflowChunk{nullptr, 0, {}};
    if (overflow_tail_ == nullptr) {
      overflow_head_ = chunk;
    } else {
      overflow_tail_->next = chunk;
    }
    overflow_tail_ = chunk;
  }
  overflow_tail_->fields[overflow_tail_->count++] = Field{name, value};
  ++overflow_count_;
  return true;
}

void Event::truncateFields(size_t total) {
  if (total >= totalFields()) return;
  if (total <= kMaxFields) {
    // indexFields() starts again when field_count went below indexed_count_.
    field_count = total;
    overflow_head_ = overflow_tail_ = nullptr;
    overflow_count_ = 0;
    return;
  }
  size_t keep = total - kMaxFields;
  overflow_count_ = keep;
  OverflowChunk* chunk = overflow_head_;
  while (keep > chunk->count) {
    keep -= chunk->count;
    chunk = chunk->next;
  }
  // Chunks after this one may lie in arena space the caller gave back.
  chunk->count = keep;
  chunk->next = nullptr;
  overflow_tail_ = chunk;
}

std::optional<std::string_view> Event::getOverflow(std::string_view name) const {
  for (const OverflowChunk* chunk = overflow_head_; chunk != nullptr; chunk = chunk->next) {
    for (size_t i = 0; i < chunk->count; ++i) {
      if (chunk->fields[i].name == name) return chunk->fields[i].value;
    }
  }
  return std::nullopt;
}

bool Event::addHit(const IndicatorHit& hit) {
  if (hit_count == kMaxHits) {
    flags |= kFlagHitsOverflow;
    return false;
  }
  hits[hit_count++] = hit;
  return true;
}

std::optional<std::string_view> Event::get(std::string_view name,
                                           std::array<char, 64>& scratch) const {
  CanonicalField id = canonicalId(name);
  if (id != CanonicalField::kNone) return getCanonical(id, scratch);
  if (field_count == 0) return std::nullopt;
  return getGeneric(name, fieldHash(name));
}

std::optional<std::string_view> Event::get(const FieldRef& ref,
                                           std::array<char, 64>& scratch) const {
  if (ref.canonical != CanonicalField::kNone) return getCanonical(ref.canonical, scratch);
  return getGeneric(ref.name, ref.hash);
}

std::optional<std::string_view> Event::getGeneric(std::string_view name, uint32_t hash) const {
  indexFields();
  // The table is never full (kMaxFields < kFieldSlots), so the probe reaches an empty
  // slot.
  size_t slot = hash & (kFieldSlots - 1);
  while (field_slots_[slot] != 0) {
    const size_t index = field_slots_[slot] - 1u;
    if (field_hashes_[index] == hash && fields[index].name == name) {
      return fields[index].value;
    }
    slot = (slot + 1) & (kFieldSlots - 1);
  }
  // The table holds the first field of each of its names, and overflow fields came later,
  // so they are searched only when the table has no field of that name.
  if (overflow_count_ != 0) return getOverflow(name);
  return std::nullopt;
}

std::optional<std::string_view> Event::getCanonical(CanonicalField id,
                                                    std::array<char, 64>& scratch) const {
  switch (id) {
    case CanonicalField::kMessage: return message;
    case CanonicalField::kHostName: return nonEmpty(host);
    case CanonicalField::kProcessName: return nonEmpty(app);
    case CanonicalField::kProcessPid: return nonEmpty(procid);
    case CanonicalField::kMsgid: return nonEmpty(msgid);
    case CanonicalField::kUserName: return nonEmpty(user);
    case CanonicalField::kAction: return nonEmpty(action);
    case CanonicalField::kOutcome: return nonEmpty(outcome);
    case CanonicalField::kTenant: return nonEmpty(tenant);
    case CanonicalField::kSourceIp:
      if (!src_ip) return std::nullopt;
      return writeIp(*src_ip, scratch);
    case CanonicalField::kDestinationIp:
      if (!dst_ip) return std::nullopt;
      return writeIp(*dst_ip, scratch);
    case CanonicalField::kSourcePort:
      if (src_port == 0) return std::nullopt;
      return writeInt(src_port, scratch);
    case CanonicalField::kDestinationPort:
      if (dst_port == 0) return std::nullopt;
      return writeInt(dst_port, scratch);
    case CanonicalField::kFacility:
      if (facility < 0) return std::nullopt;
      return writeInt(facility, scratch);
    case CanonicalField::kSeverity:
      if (severity < 0) return std::nullopt;
      return writeInt(severity, scratch);
    case CanonicalField::kTimestamp:
      return writeTime(timestamp_ns, scratch);
    case CanonicalField::kCreated:
      return writeTime(receive_ns, scratch);
    case CanonicalField::kNone: break;
  }
  return std::nullopt;
}

}  // namespace vigil
