// The TBB pipeline that runs the appliance's per-event work, in these stages:
//   - input (serial, in order): takes messages round-robin from the sources' rings and
//     copies them into the events of a free batch (the lowest-numbered one, so a lightly
//     loaded pipeline keeps reusing the same, cache-warm batch).
//   - analyze (parallel): parses the batch's events, assigns their tenants and applies
//     the quotas, then matches the kept events against the indicators in one call, then
//     evaluates detections on them.
//   - one serial stage per correlation shard: updates only that shard's windows, so one
//     stage owns each shard's state and no locks are needed.
//   - deliver (serial, in order): hands the batch's alerts to the sinks.
// Batches and their event slots are created once. The per-event path allocates only
// when an alert is raised.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/consumer_wake.h"
#include "common/ip.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "correlate/engine.h"
#include "correlate/engine_slot.h"
#include "dataplane/parser.h"
#include "dataplane/source.h"

namespace vigil::intel {
class IndicatorSet;
class Snapshot;
class SnapshotStore;
}  // namespace vigil::intel

namespace vigil::correlate {

// One tenant assignment rule, applied after parsing. The views must point into storage
// that outlives the pipeline (the daemon's configuration).
struct TenantRule {
  enum class Match : uint8_t {
    kPeerCidr,     // the sender's address is inside `prefix`
    kFieldEquals,  // Event::get(field) == value
    kFieldSuffix,  // Event::get(field) ends with value
    kVlan,         // the frame's innermost VLAN id (only DPDK sources see tags)
  };
  Match match = Match::kPeerCidr;
  IpPrefix prefix;
  std::string_view field;
  std::string_view value;
  uint16_t vlan = 0;
  std::string_view tenant;
};

// A per-tenant rate limit, checked in the analyze stage right after the tenant rules.
// `tenant` must point into storage that outlives the pipeline.
struct TenantQuota {
  std::string_view tenant;
  double max_events_per_second = 0;  // sustained rate; fractions such as 0.5 are allowed
  double burst = 1;                  // events admitted at once after an idle period, >= 1
};

// A lock-free token bucket in its GCRA form (generic cell rate algorithm). One atomic holds
// the theoretical arrival time of the next event, and tryTake() advances it by one
// interval per admitted event. Every analyze thread shares it, and it never allocates.
class QuotaBucket {
 public:
  QuotaBucket(double events_per_second, double burst);

  // Admits one event at monotonic time `now_ns` if the bucket has a token. Thread-safe.
  bool tryTake(int64_t now_ns);

 private:
  int64_t interval_ns_;   // time one token takes to refill
  int64_t tolerance_ns_;  // burst * interval_ns_: how far ahead of now the bucket may run
  std::atomic<int64_t> next_ns_{0};
};

struct PipelineOptions {
  size_t batch_size = 256;  // events per batch
  size_t batches = 8;       // batches in flight (the TBB token count)
  // Largest message the sources deliver; each event arena is twice this plus headroom,
  // because decoded values are appended after the raw bytes. When a source's
  // max_message_bytes equals this and the headroom keeps its default, the input stage
  // trades ring slot buffers for arenas instead of copying each message
  // (dataplane::moveToEvent()).
  size_t max_message_bytes = 8192;
  size_t arena_headroom_bytes = dataplane::kDefaultArenaHeadroomBytes;
  // (correlation rule, event) updates one event may cause; more are dropped and counted.
  size_t max_correlation_updates_per_event = 16;
  // Time zone for RFC 3164 timestamps, seconds east of UTC.
  int32_t default_utc_offset_s = 0;
  // Longest sleep of the input stage while every ring is empty: starts at idle_min and
  // doubles up to idle_max. A source that publishes ends the sleep at once, so these
  // bound only how often an idle pipeline checks for a stop or finished sources.
  std::chrono::microseconds idle_min{50};
  std::chrono::microseconds idle_max{2000};
  // Tried in order on every parsed event; the first match replaces the source's tenant.
  std::vector<TenantRule> tenant_rules;
  // At most one per tenant. Events over their tenant's quota are counted as
  // vigil_events_dropped_total{reason="tenant_quota"} and not matched or correlated.
  std::vector<TenantQuota> tenant_quotas;
};

// The tenant label of per-tenant counters for tenants that the configuration does not
// name, so unknown tenant names add one series, not one each.
inline constexpr std::string_view kOtherTenantLabel = "_other";

class Pipeline {
 public:
  // `sources`, `engine` and `sinks` are not owned and must outlive run(). `intel` may be
  // null (no indicator matching). The engine's shard count sets the number of
  // correlation stages. Counters are registered in `metrics` for "default", every
  // source's tenant, every rule's tenant and every quota's tenant: vigil_tenant_events_total
  // {tenant}, and per {source, tenant} vigil_events_parsed_total, vigil_parse_errors_total,
  // vigil_events_truncated_total, vigil_events_invalid_utf8_total,
  // vigil_events_delivered_total and vigil_events_dropped_total{reason="tenant_quota"}.
  // Per tenant also vigil_indicator_hits_total{tenant} and vigil_alerts_delivered_total
  // {tenant}, the latter with kOtherTenantLabel for an alert of a tenant not numbered.
  Pipeline(std::vector<dataplane::Source*> sources,
           std::shared_ptr<const intel::IndicatorSet> intel, Engine& engine,
           std::vector<AlertSink*> sinks, MetricsRegistry& metrics, PipelineOptions options = {});
  // Same, with indicator snapshots that may be replaced while the pipeline runs. `intel`
  // is not owned and must outlive run(); it may be null. Each batch reads one snapshot
  // from the analyze stage until it has been delivered, so every event is matched against
  // exactly one snapshot. A store with fewer reader slots than options.batches lowers the
  // batch count to the slot count and logs a warning.
  Pipeline(std::vector<dataplane::Source*> sources, intel::SnapshotStore* intel, Engine& engine,
           std::vector<AlertSink*> sinks, MetricsRegistry& metrics, PipelineOptions options = {});
  // Same, with an engine that a rule reload may replace while the pipeline runs. `engines`
  // is not owned and must outlive run(). The input stage reads the slot when a batch
  // enters, and the batch runs on that engine until it is delivered, so no batch mixes
  // two rule sets. Each shard's stage and the deliver stage hand the state over
  // (Engine::takeOverShard, takeOverSuppression) when the first batch on a new engine
  // reaches them, and count it in vigil_rules_reload_groups_total{outcome}.
  Pipeline(std::vector<dataplane::Source*> sources, intel::SnapshotStore* intel,
           EngineSlot* engines, std::vector<AlertSink*> sinks, MetricsRegistry& metrics,
           PipelineOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs until every source is finished() and its ring is drained, or until
  // requestStop(); then hands any state still held by a replaced engine to the slot's
  // current engine, so checkpoints taken after run() see all of it, and calls flush()
  // on every sink. Blocks the calling thread and uses
  // the TBB worker threads. Messages still in the rings after a stop stay there.
  void run();

  // Asks run() to return after the batches in flight. Thread-safe.
  void requestStop() {
    stop_.store(true, std::memory_order_relaxed);
    input_wake_.notify();
  }

  // Asks for a checkpoint of the engine after the next batch that enters. Each shard's
  // stage saves its own state when that batch passes it, the deliver stage adds the
  // suppression keys, and takeCheckpoint() then returns the file. Only the stage that
  // is saving waits, for the time its own state takes to encode. Thread-safe. NOTE: while
  // no events arrive, no batch enters and the request waits.
  void requestCheckpoint() { checkpoint_requested_.store(true, std::memory_order_release); }
  // Returns the latest finished checkpoint file once, or nullopt. Thread-safe.
  std::optional<std::string> takeCheckpoint();

 private:
  struct Batch;
  struct Counters;
  struct FlowCounters;
  struct ThreadStates;

  bool fillBatch(Batch& batch);
  Batch* freeBatch();
  bool allSourcesDone() const;
  bool anyRingReady() const;
  void analyzeBatch(Batch& batch);
  void admitBatch(Batch& batch);
  void detectBatch(Batch& batch, DetectScratch& scratch);
  uint32_t assignTenant(Event& event, uint32_t source_tenant) const;
  void registerCounters(MetricsRegistry& metrics);
  void correlateBatch(Batch& batch, uint32_t shard);
  void correlateEachEvent(Batch& batch, uint32_t shard);
  // Applies work item `w` of the batch to the shard's windows.
  void correlateItem(Batch& batch, uint32_t shard, size_t w);
  void deliverBatch(Batch& batch);
  void finishCheckpoint(Engine& engine);
  void handOverShard(uint32_t shard, const std::shared_ptr<Engine>& engine);
  void handOverSuppression(const std::shared_ptr<Engine>& engine);

  std::vector<dataplane::Source*> sources_;
  std::unique_ptr<intel::SnapshotStore> own_store_;  // for the IndicatorSet constructor
  intel::SnapshotStore* intel_ = nullptr;
  std::unique_ptr<EngineSlot> own_slot_;  // for the constructors that take an Engine&
  EngineSlot* engines_ = nullptr;
  // The engine each stage ran its last batch on. Each is touched only by its own serial
  // stage: the input stage, one per shard, and the deliver stage.
  std::shared_ptr<Engine> input_engine_;
  uint64_t input_generation_ = 0;
  std::vector<std::shared_ptr<Engine>> shard_engines_;
  std::shared_ptr<Engine> deliver_engine_;
  std::vector<AlertSink*> sinks_;
  PipelineOptions options_;
  std::unique_ptr<Counters> counters_;
  std::vector<std::unique_ptr<Batch>> batches_;
  std::unique_ptr<ThreadStates> thread_states_;
  size_t next_source_ = 0;
  std::atomic<bool> stop_{false};
  // The input stage sleeps on this while every ring is empty; the sources' rings wake it
  // when they publish (run() connects them).
  ConsumerWake input_wake_;
  std::atomic<bool> checkpoint_requested_{false};
  std::vector<std::string> checkpoint_parts_;  // one per shard, written by its stage
  std::mutex checkpoint_mutex_;
  std::optional<std::string> checkpoint_ready_;
};

}  // namespace vigil::correlate
