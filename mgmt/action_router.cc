#include "mgmt/action_router.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/log.h"
#include "mgmt/internal/alert_json.h"
#include "mgmt/internal/crypto_util.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;

constexpr size_t kMaxStepText = 4096;  // bytes of a result or parameter text kept in a step
// Upper bounds of the connector latency histogram, in seconds: 100 us to 30 s, the
// longest connector timeout worth telling apart.
const std::vector<double> kConnectorLatencyBounds = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                     0.1,    0.5,    1,     5,     10,   30};
constexpr size_t kKeyHexDigits = 32;   // 128 bits of the SHA-256
constexpr absl::string_view kKeyPrefix = "vigil-";
// Separates the inputs of an idempotency key, so no field can run into the next one.
constexpr absl::string_view kKeySeparator("\0", 1);

std::string clip(std::string text) {
  if (text.size() > kMaxStepText) {
    text.resize(kMaxStepText);
    text += "...";
  }
  return text;
}

}  // namespace

RunContext& runContext(pb::HostCall& call) {
  auto* base = static_cast<pb::compiler::AlertRunContext*>(call.context());
  return *static_cast<RunContext*>(base);
}

nlohmann::json paramsToJson(const pb::List& params) {
  nlohmann::json out = nlohmann::json::object();
  for (uint32_t i = 0; i + 1 < params.size; i += 2) {
    const pb::Value& key = params.items[i];
    if (!key.isString()) continue;
    out[std::string(key.asString())] = pb::compiler::valueToJson(params.items[i + 1]);
  }
  return out;
}

namespace {

void appendParamValue(const pb::Value& value, std::string& out) {
  switch (value.type()) {
    case pb::ValueType::kString:
      internal::appendJsonString(value.asString(), out);
      return;
    case pb::ValueType::kInt: {
      char digits[absl::numbers_internal::kFastToBufferSize];
      out.append(digits, absl::numbers_internal::FastIntToBuffer(value.asInt(), digits));
      return;
    }
    default:  // null, booleans, doubles and lists (with valueToJson's depth limit)
      internal::appendJsonValue(pb::compiler::valueToJson(value), out);
      return;
  }
}

}  // namespace

void writeParamsJson(const pb::List& params, std::string& out) {
  // The order of a JSON object's keys (sorted, the last of equal keys winning), by
  // position of the key in `params`.
  thread_local std::vector<uint32_t> order;
  order.clear();
  for (uint32_t i = 0; i + 1 < params.size; i += 2) {
    if (params.items[i].isString()) order.push_back(i);
  }
  auto keyAt = [&params](uint32_t i) { return params.items[i].asString(); };
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const std::string_view key_a = keyAt(a), key_b = keyAt(b);
    return key_a < key_b || (key_a == key_b && a < b);
  });
  out.clear();
  out.push_back('{');
  for (size_t n = 0; n < order.size(); ++n) {
    if (n + 1 < order.size() && keyAt(order[n + 1]) == keyAt(order[n])) continue;
    if (out.size() > 1) out.push_back(',');
    internal::appendJsonString(keyAt(order[n]), out);
    out.push_back(':');
    appendParamValue(params.items[order[n] + 1], out);
  }
  out.push_back('}');
}

std::string actionIdempotencyKey(const RunContext& ctx, uint32_t pc, std::string_view action,
                                 const std::string& params_json) {
  // The digest input is the text StrCat(run_id, sep, created_ns, sep, pc, sep, action, sep,
  // params_json, sep, earlier), built in a reused buffer and hashed in one update. Keys
  // must not change between versions: a segment journaled by one build is run again by
  // the next with the keys the far side has seen.
  thread_local internal::Sha256 hasher;
  thread_local std::string input;
  input.clear();
  absl::StrAppend(&input, ctx.run_id, kKeySeparator, ctx.created_ns, kKeySeparator, pc,
                  kKeySeparator, absl::string_view(action.data(), action.size()), kKeySeparator,
                  params_json, kKeySeparator);
  const size_t fixed = input.size();
  unsigned char digest[internal::Sha256::kDigestBytes];
  std::string key;
  for (uint64_t earlier = 0;; ++earlier) {
    input.resize(fixed);
    absl::StrAppend(&input, earlier);
    hasher.update(input);
    hasher.finish(digest);
    key.assign(kKeyPrefix.data(), kKeyPrefix.size());
    internal::appendHex(digest, kKeyHexDigits / 2, key);
    if (ctx.done_action_keys.count(key) == 0) return key;
  }
}

ActionRouter::ActionRouter(std::vector<NamedConnector> connectors, std::vector<ActionRoute> routes,
                           MetricsRegistry& metrics)
    : connectors_(std::move(connectors)),
      routes_(std::move(routes)),
      unrouted_(metrics.counter("vigil_playbook_actions_unrouted_total",
                                "Playbook actions that no playbooks.actions route matched")),
      replayed_(metrics.counter("vigil_playbook_actions_replayed_total",
                                "Playbook actions not called again after a restart because the "
                                "run journal recorded their outcome")),
      journal_errors_(metrics.counter("vigil_playbook_journal_errors_total",
                                      "Run journal records that could not be written")) {
  for (NamedConnector& c : connectors_) {
    const char* help = "Connector calls made by playbook actions, by connector and outcome";
    c.ok = &metrics.counter("vigil_playbook_connector_calls_total", help,
                            {{"connector", c.name}, {"outcome", "ok"}});
    c.failed = &metrics.counter("vigil_playbook_connector_calls_total", help,
                                {{"connector", c.name}, {"outcome", "error"}});
    c.latency = &metrics.histogram("vigil_playbook_connector_latency_seconds",
                                   "Time each connector call took, in seconds",
                                   kConnectorLatencyBounds, {{"connector", c.name}});
    c.consecutive_errors = &metrics.gauge("vigil_playbook_connector_consecutive_errors",
                                          "Connector calls failed in a row since the last success",
                                          {{"connector", c.name}});
    c.up = &metrics.gauge("vigil_playbook_connector_up",
                          "1 while a connector works, 0 after 3 calls failed in a row",
                          {{"connector", c.name}});
    c.up->set(1);
  }
}

NamedConnector* ActionRouter::route(std::string_view action) {
  const ActionRoute* best = nullptr;
  size_t best_rank = 0;  // 3 exact, 2 + prefix length for prefixes, 1 for "*"
  for (const ActionRoute& r : routes_) {
    size_t rank = 0;
    if (r.pattern == action) {
      rank = SIZE_MAX;
    } else if (r.pattern == "*") {
      rank = 1;
    } else if (r.pattern.size() > 2 && r.pattern.compare(r.pattern.size() - 2, 2, ".*") == 0) {
      std::string_view prefix(r.pattern.data(), r.pattern.size() - 1);  // keeps the dot
      if (action.substr(0, prefix.size()) == prefix) rank = 2 + prefix.size();
    }
    if (rank > best_rank) {
      best_rank = rank;
      best = &r;
    }
  }
  if (best == nullptr) return nullptr;
  for (NamedConnector& c : connectors_) {
    if (c.name == best->connector) return &c;
  }
  return nullptr;
}

absl::Status ActionRouter::perform(std::string_view action, const pb::List& params,
                                   pb::HostCall& call, pb::Value& result) {
  RunContext& ctx = runContext(call);
  RunStep step;
  step.kind = "action";
  step.name = std::string(action);
  std::string params_json;
  writeParamsJson(params, params_json);
  ctx.action_key = actionIdempotencyKey(ctx, call.pc(), action, params_json);
  step.idempotency_key = ctx.action_key;
  step.detail = clip(std::move(params_json));
  step.started_ns = RealClock::instance().nowNs();
  int64_t start = monotonicNs();

  NamedConnector* target = route(action);
  absl::Status status;
  const bool replayed = !ctx.recorded.empty() && replay(ctx, step.idempotency_key, call, result, status);
  if (replayed) {
    replayed_.add();
  } else if (target == nullptr) {
    unrouted_.add();
    status = absl::FailedPreconditionError(
        absl::StrCat("no connector handles action ", std::string(action),
                     "; route it under playbooks.actions in the configuration"));
  } else {
    std::lock_guard<std::mutex> lock(*target->mu);
    if (ctx.journal != nullptr) {
      if (absl::Status st = ctx.journal->recordStart(step.idempotency_key, action); !st.ok()) {
        journal_errors_.add();
        VIGIL_LOG_WARN_POW2(
            "cannot record a playbook action in the run journal run={} error=\"{}\"", ctx.run_id,
            logText(st.ToString()));
      }
    }
    // Timed right before the call, after the idempotency key, the step's text and the
    // journal record of the call were made and the connector's lock was taken.
    start = monotonicNs();
    if (ctx.trigger_mono_ns != 0 && !ctx.first_action_latency_ns) {
      ctx.first_action_latency_ns = start - ctx.trigger_mono_ns;
      ctx.dispatch_latency_ns = start - ctx.worker_mono_ns;
      if (ctx.event_receive_ns != 0) {
        ctx.event_to_action_ns = RealClock::instance().nowNs() - ctx.event_receive_ns;
      }
    }
    ctx.outcome_after_group_commit = false;
    status = target->connector->perform(action, params, call, result);
    if (ctx.journal != nullptr && !ctx.outcome_after_group_commit) {
      journalOutcome(ctx, step.idempotency_key, status, result);
    }
    ctx.outcome_after_group_commit = false;
    const int64_t took_ns = monotonicNs() - start;
    target->latency->observe(static_cast<double>(took_ns) * 1e-9);
    (status.ok() ? target->ok : target->failed)->add();
    target->error_streak = status.ok() ? 0 : target->error_streak + 1;
    target->consecutive_errors->set(target->error_streak);
    target->up->set(target->error_streak >= kUnhealthyAfterErrors ? 0 : 1);
  }
  ctx.action_key.clear();
  if (status.ok()) ctx.done_action_keys.insert(step.idempotency_key);
  step.duration_ns = monotonicNs() - start;
  step.outcome = status.ok() ? "ok" : "error";
  step.message = clip(status.ok() ? pb::valueToString(result) : std::string(status.message()));
  if (replayed) {
    step.duration_ns = 0;
    step.message = clip(absl::StrCat("not called again after the restart; recorded outcome: ",
                                     step.message));
  }
  if (target != nullptr) step.name = absl::StrCat(std::string(action), " via ", target->name);
  if (!status.ok()) {
    VIGIL_LOG_WARN_POW2("playbook action failed run={} playbook={} action={} error=\"{}\"",
                        ctx.run_id, ctx.playbook, std::string(action),
                        logText(std::string(status.message())));
  }
  ctx.steps.push_back(std::move(step));
  return status;
}

bool ActionRouter::replay(RunContext& ctx, const std::string& key, pb::HostCall& call,
                          pb::Value& result, absl::Status& status) {
  auto it = ctx.recorded.find(key);
  if (it == ctx.recorded.end() || it->second.empty()) return false;
  RecordedAction outcome = std::move(it->second.front());
  it->second.pop_front();
  if (outcome.case_id != 0) ctx.case_id = outcome.case_id;
  if (!outcome.ok) {
    status = absl::Status(static_cast<absl::StatusCode>(outcome.code), outcome.error);
    if (status.ok()) status = absl::UnknownError(outcome.error);
    return true;
  }
  nlohmann::json value = nlohmann::json::parse(outcome.value_json, nullptr, false);
  if (value.is_discarded()) value = nullptr;
  status = pb::compiler::jsonToHeapValue(value, call, result)
               ? absl::OkStatus()
               : absl::ResourceExhaustedError("run heap memory limit reached");
  return true;
}

void ActionRouter::journalOutcome(RunContext& ctx, const std::string& key,
                                  const absl::Status& status, const pb::Value& result) {
  RecordedAction outcome;
  outcome.key = key;
  outcome.ok = status.ok();
  outcome.code = static_cast<int>(status.code());
  outcome.case_id = ctx.case_id;
  if (status.ok()) {
    outcome.value_json = pb::compiler::valueToJson(result).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    outcome.error = std::string(status.message());
  }
  if (absl::Status st = ctx.journal->recordOutcome(outcome); !st.ok()) {
    journal_errors_.add();
    VIGIL_LOG_WARN_POW2(
        "cannot record a playbook action outcome in the run journal run={} error=\"{}\"",
        ctx.run_id, logText(st.ToString()));
  }
}

}  // namespace vigil::mgmt
