// The normalized event: one record parsed from any source and format, as every later
// stage (intel, correlate, playbooks, cases) reads it.
//
// Ownership: every string_view in an Event points into the event's own arena (the raw
// bytes are copied there first, and decoded values such as unescaped structured data
// are appended after them) or into static storage. An Event is a reusable slot: the
// pipeline creates a fixed number of them at start and calls reset() between uses, so
// filling one allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/arena.h"
#include "common/ip.h"

namespace vigil {

// Flags describe what happened to an event on the way in. They are bits so an event can
// carry several (an oversize message that is also invalid UTF-8).
enum EventFlag : uint32_t {
  kFlagParseError = 1u << 0,        // no known format matched; the event is raw text
  kFlagTruncated = 1u << 1,         // longer than the source's max message size
  kFlagInvalidUtf8 = 1u << 2,       // invalid sequences were replaced by U+FFFD
  kFlagTimestampInvalid = 1u << 3,  // timestamp unparseable; event time = receive time
  kFlagMsgUtf8Bom = 1u << 4,        // MSG started with a BOM (stripped): MSG is UTF-8
  kFlagNoHostname = 1u << 5,        // sender gave no HOSTNAME; host is the peer address
  kFlagFieldsOverflow = 1u << 6,    // more fields than kMaxFields; the rest are in overflow
  kFlagArenaFull = 1u << 7,         // decoded values did not fit the arena
  kFlagYearInferred = 1u << 8,      // RFC 3164 timestamp without year; year was chosen
  kFlagHitsOverflow = 1u << 9,      // more indicator hits than kMaxHits
  kFlagJsonPayload = 1u << 10,      // MSG (or the whole line) was a JSON object
  kFlagPriMissing = 1u << 11,       // RFC 3164 line without PRI; PRI 13 was assumed
  kFlagZoneAssumed = 1u << 12,      // RFC 5424 TIMESTAMP without UTC offset; read as UTC
};

enum class EventFormat : uint8_t { kUnknown, kRfc3164, kRfc5424, kJson, kRaw, kCef, kLeef };

std::string_view formatName(EventFormat f);

enum class IndicatorType : uint8_t {
  kIpv4,
  kIpv6,
  kCidr,
  kDomain,
  kUrl,
  kMd5,
  kSha1,
  kSha256,
  kEmail,     // mailbox address, compared case-insensitively
  kFilename,  // file name without a directory, compared case-insensitively
  kRegex,     // Hyperscan expression over the message and chosen fields
};

std::string_view indicatorTypeName(IndicatorType t);

// One name/value pair. Names use the dotted paths of the source document for JSON
// ("id.orig_h", "dns.rrname") and "sd.<SD-ID>.<PARAM>" for RFC 5424 structured data.
struct Field {
  std::string_view name;
  std::string_view value;
};

// One indicator hit. `indicator` and `list` point into the indicator snapshot that
// produced the hit, which outlives the event's trip through the pipeline.
struct IndicatorHit {
  std::string_view indicator;
  std::string_view list;
  IndicatorType type;
  std::string_view field;  // event field that matched: "source.ip", "message", ...
  uint32_t indicator_id = 0;  // index of the indicator in its snapshot (sightings, metadata)
  uint8_t score = 0;          // reputation 0..100 at snapshot build time; 0 = not scored
};

// The members that Event::get() reaches by a canonical name. kNone marks a generic field.
enum class CanonicalField : uint8_t {
  kNone,
  kTimestamp,        // "@timestamp"
  kCreated,          // "event.created"
  kHostName,         // "host.name"
  kProcessName,      // "process.name"
  kProcessPid,       // "process.pid"
  kMsgid,            // "log.syslog.msgid"
  kFacility,         // "log.syslog.facility.code"
  kSeverity,         // "log.syslog.severity.code"
  kMessage,          // "message"
  kSourceIp,         // "source.ip"
  kSourcePort,       // "source.port"
  kDestinationIp,    // "destination.ip"
  kDestinationPort,  // "destination.port"
  kUserName,         // "user.name"
  kAction,           // "event.action"
  kOutcome,          // "event.outcome"
  kTenant,           // "tenant"
};

// A field name resolved once (at rule load) for repeated Event::get() calls. `name` is
// not owned: it must outlive the FieldRef, because generic lookups compare against it.
struct FieldRef {
  std::string_view name;
  CanonicalField canonical = CanonicalField::kNone;
  uint32_t hash = 0;  // Event::fieldHash(name); used only when canonical is kNone
};

struct Event {
  // Fields the table holds. Fields past it go to the overflow area in the arena.
  static constexpr size_t kMaxFields = 96;
  // Fields per overflow chunk (one arena allocation of about 530 bytes).
  static constexpr size_t kOverflowChunkFields = 16;
  static constexpr size_t kMaxHits = 16;

  explicit Event(size_t arena_bytes) : arena(arena_bytes) {}

  // Clears every value so the slot can take the next event. Keeps the arena buffer.
  void reset();

  // Looks a field up by name. Canonical names (see docs/event.md) come first:
  // "@timestamp", "event.created", "host.name", "process.name", "process.pid",
  // "log.syslog.msgid", "log.syslog.facility.code", "log.syslog.severity.code",
  // "message", "source.ip", "source.port", "destination.ip", "destination.port",
  // "user.name", "event.action", "event.outcome", "tenant", then generic fields, where
  // the first field added under a name wins. Numbers and addresses are formatted into
  // `scratch` when the caller needs text. Returns nullopt when the event has no such
  // field. Constant time in the number of fields; allocates nothing.
  //
  // The first generic lookup after fields were added indexes them (see indexFields()),
  // so get() writes to the event. Call it from one thread at a time, or call
  // indexFields() before sharing the event read-only between threads.
  std::optional<std::string_view> get(std::string_view name, std::array<char, 64>& scratch) const;

  // Same lookup for a name resolved earlier by resolve(); skips the name dispatch.
  std::optional<std::string_view> get(const FieldRef& ref, std::array<char, 64>& scratch) const;

  // Resolves `name` to a canonical member or to its generic-field hash. The returned ref
  // points at `name`'s bytes.
  static FieldRef resolve(std::string_view name);

  // The canonical field names, in the order of docs/event.md ("@timestamp" ... "tenant").
  static std::span<const std::string_view> canonicalNames();

  // Returns the hash that the generic-field index uses for `name`. Public for tests.
  static uint32_t fieldHash(std::string_view name);

  // Appends a generic field. The first kMaxFields fields go to `fields`; later ones go
  // to the overflow area, a chain of chunks in the arena, and set kFlagFieldsOverflow.
  // get() finds overflow fields too (by a linear scan, after the indexed table missed).
  // Returns false only when an overflow chunk did not fit the arena: the field is then
  // lost and kFlagArenaFull is set. The name is indexed later, by the first generic get()
  // or by indexFields(), so an event that is never read by a generic name never pays for
  // the index. To drop fields they added, parsers call truncateFields().
  bool addField(std::string_view name, std::string_view value) {
    if (field_count == kMaxFields) return addOverflowField(name, value);
    // Fields were dropped after the last indexing, so slots below indexed_count_ may now
    // name other fields.
    if (field_count < indexed_count_) invalidateFieldIndex();
    fields[field_count++] = Field{name, value};
    return true;
  }

  // Generic fields in the table and in the overflow area together.
  size_t totalFields() const { return field_count + overflow_count_; }
  size_t overflowFields() const { return overflow_count_; }

  // Keeps the first `total` generic fields (table first, then overflow) and forgets the
  // rest. Parsers call it with a count from totalFields() to undo a partial parse, after
  // giving the arena back. Does nothing when `total` >= totalFields().
  void truncateFields(size_t total);

  // Calls visit(const Field&) for every generic field in the order they were added,
  // table first. `visit` returns false to stop; visitFields() then returns false.
  template <typename Visit>
  bool visitFields(Visit&& visit) const {
    for (size_t i = 0; i < field_count; ++i) {
      if (!visit(fields[i])) return false;
    }
    for (const OverflowChunk* chunk = overflow_head_; chunk != nullptr; chunk = chunk->next) {
      for (size_t i = 0; i < chunk->count; ++i) {
        if (!visit(chunk->fields[i])) return false;
      }
    }
    return true;
  }

  // Indexes the fields added since the last lookup. get() calls it when needed. Call it
  // directly before several threads read the event at once. Allocates nothing.
  void indexFields() const;

  // Adds an indicator hit. Returns false (and sets kFlagHitsOverflow) when full.
  bool addHit(const IndicatorHit& hit);

  bool has(EventFlag f) const { return (flags & f) != 0; }

  // --- where it came from
  std::string_view raw;  // the bytes as received (after framing), in the arena
  int64_t receive_ns = 0;
  uint16_t source_id = 0;
  uint16_t vlan = 0;           // innermost VLAN id of the frame (DPDK only); 0 = untagged
  std::optional<IpAddr> peer;  // sender address for network sources
  std::string_view tenant;
  EventFormat format = EventFormat::kUnknown;
  uint32_t flags = 0;

  // --- syslog header
  int64_t timestamp_ns = 0;  // event time, UTC nanoseconds since the epoch
  int16_t facility = -1;     // -1 when the message had no PRI
  int16_t severity = -1;
  std::string_view host;
  std::string_view app;
  std::string_view procid;
  std::string_view msgid;
  std::string_view structured_data;  // RFC 5424 SD as received, "-" when NILVALUE
  std::string_view message;          // MSG, BOM stripped, invalid UTF-8 replaced

  // --- extracted by known patterns (sshd, Zeek, Suricata, ...)
  std::optional<IpAddr> src_ip;
  std::optional<IpAddr> dst_ip;
  uint16_t src_port = 0;  // 0 when unknown
  uint16_t dst_port = 0;
  std::string_view user;
  std::string_view action;   // what happened, e.g. "ssh_login"
  std::string_view outcome;  // "success", "failure" or empty

  // --- generic fields, structured data and JSON members (the first kMaxFields; see
  // visitFields() for all of them)
  std::array<Field, kMaxFields> fields;
  size_t field_count = 0;

  // --- intel results
  std::array<IndicatorHit, kMaxHits> hits;
  size_t hit_count = 0;

  Arena arena;

 private:
  // A block of overflow fields in the arena. Chunks form a list in the order they were
  // filled; only the last one is partly filled.
  struct OverflowChunk {
    OverflowChunk* next;
    size_t count;
    Field fields[kOverflowChunkFields];
  };

  bool addOverflowField(std::string_view name, std::string_view value);
  std::optional<std::string_view> getOverflow(std::string_view name) const;

  OverflowChunk* overflow_head_ = nullptr;
  OverflowChunk* overflow_tail_ = nullptr;
  size_t overflow_count_ = 0;

  // Open-addressing index of the generic fields, with linear probing. A slot holds a
  // field's index + 1, or 0 when empty, so 256 slots for at most 96 fields stay under
  // 40% full. The index covers fields[0, indexed_count_). It is a cache of `fields`
  // that const lookups fill in, hence mutable.
  static constexpr size_t kFieldSlots = 256;
  static_assert(kMaxFields < kFieldSlots && kMaxFields <= 255, "slot values are uint8_t");

  std::optional<std::string_view> getCanonical(CanonicalField id,
                                               std::array<char, 64>& scratch) const;
  std::optional<std::string_view> getGeneric(std::string_view name, uint32_t hash) const;
  void indexField(size_t index) const;
  void invalidateFieldIndex() const {
    field_slots_.fill(0);
    indexed_count_ = 0;
  }

  mutable std::array<uint8_t, kFieldSlots> field_slots_{};
  mutable std::array<uint32_t, kMaxFields> field_hashes_{};
  mutable size_t indexed_count_ = 0;
};

}  // namespace vigil
