// The run side of threat intelligence: an immutable indicator snapshot and the matcher
// that checks one event against it. The snapshot is built by IndicatorSetBuilder
// (intel/builder.h); workers share it read-only and each owns its own Scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/event.h"

namespace vigil::intel {

class IndicatorSet;  // defined in intel/indicator_set.h

// Per-worker memory for matching (Hyperscan scratch and buffers). Not thread-safe: one
// worker uses one Scratch.
class Scratch {
 public:
  explicit Scratch(const IndicatorSet& set);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Number of Hyperscan scans that failed with this Scratch (hs_scan() returned an error
  // other than HS_SCAN_TERMINATED). Hits found before a failure are kept; later ones in
  // that text are lost, so the worker exports this as a drop counter. Any thread may
  // read it.
  uint64_t scanErrors() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Checks the event's address fields against the address and prefix tables. File fields
// (names with "file", "path", "image" or "process", and event.app) go to the file name
// set. The host names and hex runs of the message and other field values go to the
// domain and hash sets, and those texts are scanned with the Hyperscan database of URLs,
// emails and regexes. Appends one IndicatorHit per distinct indicator found, with its
// indicator_id and score. Only indicators of every tenant and of `event.tenant` are
// reported; when a value is an indicator of both, both copies are reported, the copy of
// every tenant first. Returns the number of hits added.
// Never allocates. Thread-safe for concurrent calls with different Scratch objects.
size_t matchEvent(const IndicatorSet& set, Scratch& scratch, Event& event);

// Matches each of `events` in order and returns the number of hits added over all of
// them. Each event gets exactly the hits, in the same order, that matchEvent() gives it.
// The work is pipelined over the events. The lookups of the next event are queued, which
// prefetches their table lines, before those of the current one are probed. The Event
// lines and message bytes of the events after that are prefetched too. So the cache
// misses of consecutive events overlap instead of following one another. The events
// must be distinct objects. Never allocates. Thread-safe like matchEvent().
size_t matchEvents(const IndicatorSet& set, Scratch& scratch, std::span<Event* const> events);

// Matches each of `events` against `set` and then against `delta`, like matchEvents() on
// `set` followed by matchEvents() on `delta`: each event gets the same hits in the same
// order, and `delta` ids stay ids of `delta`. The message and fields are walked once.
// Each host name, hex run, file name and address found is probed in both sets, and only
// the Hyperscan scans run per set. `delta_first_hits[i]` receives the hit count of
// events[i] before its first `delta` hit, and must have an entry per event. `scratch`
// must be made for `set` and `delta_scratch` for `delta`. Never allocates. Thread-safe
// like matchEvent().
size_t matchEventsWithDelta(const IndicatorSet& set, Scratch& scratch, const IndicatorSet& delta,
                            Scratch& delta_scratch, std::span<Event* const> events,
                            std::span<size_t> delta_first_hits);

}  // namespace vigil::intel
