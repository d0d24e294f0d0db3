// The playbook runner's daemon path: an alert handed to PlaybookRunner::onAlert() to the
// first connector call of its run, once for each playbooks.durability setting. The run's
// start goes to the run start journal before the first action (synced with "full") and
// its row to SQLite when the run ends. The connector forwards one syslog datagram to a
// socket on 127.0.0.1.
//
//   ./build/release/bench/playbook_runner_bench --benchmark_min_time=2
//
// `process` and `full` run with the default worker_spin_us (50), `process_nospin` with 0,
// so every alert there waits for its worker to be woken. Those cases wait for flush()
// after each alert, so each run's row is written before the next alert. `process_paced`
// sends the next alert when the previous run's datagram arrives, so alerts follow each
// other as they do from the pipeline, and the rows are written in batches when the queue
// runs empty or kDeferMaxRuns runs have finished.
//
// Counters, over the runs of the benchmark:
//   first_action_us    mean of vigil_playbook_first_action_latency_us (alert queued to
//                      the connector call)
//   first_action_p50_us, first_action_p99_us, first_action_p_le10us
//                      its median, 99th percentile and share within 10 us, as below
//   spin_hits          runs whose worker took the alert while polling, without sleeping
//   dispatch_us        mean of vigil_playbook_dispatch_latency_us (a worker took the job
//                      to the connector call)
//   dispatch_p50_us    median and 99th percentile of the dispatch time, each the upper
//   dispatch_p99_us    bound of a 0.1 us bucket (so at most 0.1 us high below 50 us)
//   dispatch_p_le10us  share of runs whose dispatch took at most 10 us
// The iteration time is one whole run (queue, journal, VM, connector, final write).
// BM_Alert_* time the alert step of a run alone: the JSON object runs used to build and
// the view they use now, each with the run journal's JSON text.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mgmt/internal/alert_json.h"
#include "mgmt/internal/alert_view.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {
namespace {

// Upper bounds of the latency histograms the benchmark registers before the runner does:
// 0.1 us steps up to 50 us, 1 us steps up to 1 ms, then coarse bounds.
std::vector<double> fineLatencyBoundsUs() {
  std::vector<double> bounds;
  for (int tenths = 1; tenths <= 500; ++tenths) bounds.push_back(tenths / 10.0);
  for (int us = 51; us <= 1000; ++us) bounds.push_back(us);
  for (double bound : {5000.0, 10000.0, 100000.0, 1000000.0}) bounds.push_back(bound);
  return bounds;
}

// The upper bound of the bucket that contains the `quantile` share of the observations, or
// the largest bound when that bucket is +Inf.
double quantileBound(const Histogram& histogram, double quantile) {
  const uint64_t rank = static_cast<uint64_t>(std::ceil(quantile * histogram.count()));
  uint64_t seen = 0;
  for (size_t i = 0; i < histogram.bounds().size(); ++i) {
    seen += histogram.bucketValue(i);
    if (seen >= rank) return histogram.bounds()[i];
  }
  return histogram.bounds().back();
}

// The observations at or below `bound`, which must be one of the histogram's bounds.
uint64_t countAtMost(const Histogram& histogram, double bound) {
  uint64_t seen = 0;
  for (size_t i = 0; i < histogram.bounds().size() && histogram.bounds()[i] <= bound; ++i) {
    seen += histogram.bucketValue(i);
  }
  return seen;
}

void BM_Runner_AlertToFirstAction(benchmark::State& state, const char* durability,
                                  uint32_t worker_spin_us, bool paced = false) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "vigil-runner-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "playbooks");
  std::ofstream(dir / "playbooks" / "fwd.yml") << R"(name: fwd
trigger: {rule_ids: [r1]}
steps:
  - action: siem.forward
    with: {src_ip: alert.src_ip, host: alert.host}
)";
  int sink = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(sink, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(sink, reinterpret_cast<sockaddr*>(&addr), &len);
  timeval receive_timeout{1, 0};
  setsockopt(sink, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof(receive_timeout));

  PlaybookRunnerConfig config;
  config.enabled = true;
  config.paths = {(dir / "playbooks").string()};
  config.db = (dir / "runs.db").string();
  config.durability = durability;
  config.worker_spin_us = worker_spin_us;
  ConnectorConfig syslog;
  syslog.name = "siem";
  syslog.type = "syslog";
  syslog.address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  config.connectors.push_back(syslog);
  config.actions.push_back({"*", "siem"});
  MetricsRegistry metrics;
  // Registered first, so the runner observes into these finer buckets.
  Histogram& dispatch = metrics.histogram("vigil_playbook_dispatch_latency_us",
                                          "Dispatch time with fine buckets",
                                          fineLatencyBoundsUs());
  Histogram& first_action = metrics.histogram("vigil_playbook_first_action_latency_us",
                                              "First action latency with fine buckets",
                                              fineLatencyBoundsUs());
  auto runner = PlaybookRunner::create(config, metrics);
  if (!runner.ok() || !(*runner)->start(nullptr, nullptr).ok()) {
    state.SkipWithError("runner did not start");
    return;
  }
  correlate::Alert alert;
  alert.id = "r1-1";
  alert.rule_id = "r1";
  alert.level = "high";
  alert.tenant = "acme";
  alert.group = {{"src_ip", "203.0.113.9"}, {"host", "ws-7"}};

  char buffer[2048];
  for (auto _ : state) {
    (*runner)->onAlert(alert);
    if (paced) {
      // The next alert follows the forwarded datagram, as alerts follow each other in the
      // daemon: the runs' rows are written when the queue runs empty, not between them.
      if (recv(sink, buffer, sizeof(buffer), 0) <= 0) {
        state.SkipWithError("no datagram from the run within 1 s");
        break;
      }
      continue;
    }
    (*runner)->flush();
    while (recv(sink, buffer, sizeof(buffer), MSG_DONTWAIT) > 0) {
    }
  }
  (*runner)->flush();
  (*runner)->stop();
  const uint64_t count = first_action.count();
  if (count != static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("not every alert reached its first action");
  }
  state.counters["first_action_us"] = count == 0 ? 0 : first_action.sum() / count;
  state.counters["first_action_p50_us"] = count == 0 ? 0 : quantileBound(first_action, 0.5);
  state.counters["first_action_p99_us"] = count == 0 ? 0 : quantileBound(first_action, 0.99);
  state.counters["first_action_p_le10us"] =
      count == 0 ? 0 : static_cast<double>(countAtMost(first_action, 10.0)) / count;
  state.counters["spin_hits"] =
      static_cast<double>(metrics.sum("vigil_playbook_worker_spin_hits_total"));
  const uint64_t dispatched = dispatch.count();
  state.counters["dispatch_us"] = dispatched == 0 ? 0 : dispatch.sum() / dispatched;
  state.counters["dispatch_p50_us"] = dispatched == 0 ? 0 : quantileBound(dispatch, 0.5);
  state.counters["dispatch_p99_us"] = dispatched == 0 ? 0 : quantileBound(dispatch, 0.99);
  state.counters["dispatch_p_le10us"] =
      dispatched == 0 ? 0 : static_cast<double>(countAtMost(dispatch, 10.0)) / dispatched;
  state.SetItemsProcessed(state.iterations());
  close(sink);
  std::filesystem::remove_all(dir);
}
BENCHMARK_CAPTURE(BM_Runner_AlertToFirstAction, process, "process", 50)->UseRealTime();
BENCHMARK_CAPTURE(BM_Runner_AlertToFirstAction, process_paced, "process", 50, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_Runner_AlertToFirstAction, process_nospin, "process", 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Runner_AlertToFirstAction, full, "full", 50)->UseRealTime();

// The alert of the benchmark above with evidence, tags and timestamps, as a rule raises it.
correlate::Alert sampleAlert() {
  correlate::Alert alert;
  alert.id = "r1-1";
  alert.rule_id = "r1";
  alert.rule_title = "Brute force from one source";
  alert.level = "high";
  alert.tenant = "acme";
  alert.group = {{"src_ip", "203.0.113.9"}, {"host", "ws-7"}};
  alert.tags = {"attack.t1110", "attack.credential_access"};
  alert.first_event_ns = 1'767'225'590'000'000'000;
  alert.last_event_ns = 1'767'225'599'123'456'789;
  alert.detect_ns = 1'767'225'600'000'000'000;
  alert.event_count = 5;
  alert.evidence = {"<38>Jan  1 00:00:01 ws-7 sshd[812]: Failed password for root from 203.0.113.9",
                    "<38>Jan  1 00:00:02 ws-7 sshd[812]: Failed password for admin from 203.0.113.9"};
  return alert;
}

// Times what a run did before the view: refresh the worker's JSON object, then dump its text.
void BM_Alert_JsonObjectAndText(benchmark::State& state) {
  const correlate::Alert alert = sampleAlert();
  nlohmann::json object;
  std::string text;
  for (auto _ : state) {
    internal::refreshAlertJson(alert, 0, object);
    internal::dumpJsonTo(object, text);
    benchmark::DoNotOptimize(text.data());
  }
}
BENCHMARK(BM_Alert_JsonObjectAndText);

// Times what a run does now: point the worker's view at the alert and write its text.
void BM_Alert_ViewAndText(benchmark::State& state) {
  const correlate::Alert alert = sampleAlert();
  internal::AlertView view;
  std::string text;
  for (auto _ : state) {
    view.reset(alert, 0);
    view.writeJson(text);
    benchmark::DoNotOptimize(text.data());
  }
}
BENCHMARK(BM_Alert_ViewAndText);

}  // namespace
}  // namespace vigil::mgmt

BENCHMARK_MAIN();
