#include "mgmt/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <tbb/task_arena.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/ip.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "correlate/engine.h"
#include "correlate/pipeline.h"
#include "correlate/rules.h"
#include "dataplane/dpdk_source.h"
#include "dataplane/file_source.h"
#include "dataplane/tcp_source.h"
#include "dataplane/tls_source.h"
#include "dataplane/udp_source.h"
#include "intel/indicator_set.h"
#include "intel/snapshot.h"
#include "mgmt/alert_writer.h"
#include "mgmt/api_server.h"
#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"
#include "mgmt/case_sink.h"
#include "mgmt/case_store.h"
#include "mgmt/content_service.h"
#include "mgmt/content_store.h"
#include "mgmt/intel_manager.h"
#include "mgmt/playbook_runner.h"
#include "mgmt/rule_reloader.h"

namespace vigil::mgmt {
namespace {

// How long stop() lets the pipeline finish the messages already in the source rings.

// Tenants the configuration names: those of the sources, the tenant rules and the quotas.
std::set<std::string> configuredTenants(const DaemonConfig& config) {
  std::set<std::string> tenants;
  for (const SourceConfig& sc : config.sources) tenants.insert(sc.tenant);
  for (const TenantRuleConfig& rule : config.tenant_rules) tenants.insert(rule.tenant);
  for (const TenantQuotaConfig& quota : config.tenant_quotas) tenants.insert(quota.tenant);
  return tenants;
}

// loadConfig() accepted only names from formatNames().
dataplane::Format parseFormat(const std::string& name) {
  return formatFromName(name).value_or(dataplane::Format::kAuto);
}

dataplane::FramingMode parseFraming(const std::string& name) {
  if (name == "lf") return dataplane::FramingMode::kLf;
  if (name == "octet_counting") return dataplane::FramingMode::kOctetCounting;
  return dataplane::FramingMode::kAuto;
}

dataplane::VerifyClient parseVerifyClient(const std::string& name) {
  if (name == "optional") return dataplane::VerifyClient::kOptional;
  if (name == "required") return dataplane::VerifyClient::kRequired;
  return dataplane::VerifyClient::kNone;
}

// Converts the validated `tenants:` rules. The views point into `rules`, which the daemon
// keeps (in config_) for as long as the pipeline exists.
std::vector<correlate::TenantRule> tenantRules(const std::vector<TenantRuleConfig>& rules) {
  std::vector<correlate::TenantRule> out;
  for (const TenantRuleConfig& rc : rules) {
    correlate::TenantRule rule;
    rule.tenant = rc.tenant;
    if (!rc.cidr.empty()) {
      rule.match = correlate::TenantRule::Match::kPeerCidr;
      rule.prefix = *parsePrefix(rc.cidr);  // loadConfig() rejected invalid prefixes
    } else if (!rc.field.empty()) {
      rule.match = rc.suffix.empty() ? correlate::TenantRule::Match::kFieldEquals
                                     : correlate::TenantRule::Match::kFieldSuffix;
      rule.field = rc.field;
      rule.value = rc.suffix.empty() ? std::string_view(rc.equals) : std::string_view(rc.suffix);
    } else {
      rule.match = correlate::TenantRule::Match::kVlan;
      rule.vlan = static_cast<uint16_t>(rc.vlan);
    }
    out.push_back(rule);
  }
  return out;
}

std::string withThousands(uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

Daemon::Daemon(DaemonConfig config, DaemonOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

Daemon::~Daemon() {
  stop();
  if (state_lock_fd_ >= 0) ::close(state_lock_fd_);  // releases the flock()
}

absl::Status Daemon::loadIntel() {
  intel_ = std::make_unique<IntelManager>(config_, metrics_, correlate::PipelineOptions{}.batches);
  return intel_->loadInitial();
}

absl::Status Daemon::loadRules() {
  rules_ = std::make_unique<RuleReloader>(config_, metrics_, options_.check_only);
  absl::StatusOr<std::shared_ptr<const StagedRules>> staged = rules_->stageFromPaths(config_);
  if (!staged.ok()) return staged.status();
  correlate::Engine::PrefilterStats prefilter = (*staged)->engine->prefilterStats();
  VIGIL_LOG_INFO("detection prefilter rules={} prefiltered={} literals={}", prefilter.rules,
                 prefilter.prefiltered_rules, prefilter.literals);
  return rules_->activate(std::move(*staged), "start");
}

namespace {

// Fills the options every source type shares.
template <typename Options>
Options commonSourceOptions(const SourceConfig& sc, uint16_t id) {
  Options o;
  o.name = sc.name;
  o.id = id;
  o.tenant = sc.tenant;
  o.format = parseFormat(sc.format);
  o.max_message_bytes = sc.max_message_bytes;
  o.ring_capacity = sc.ring_capacity;
  return o;
}

// Fills the options TCP and TLS listeners share.
template <typename Options>
Options streamSourceOptions(const SourceConfig& sc, uint16_t id) {
  auto o = commonSourceOptions<Options>(sc, id);
  o.listen = sc.listen;
  o.framing = parseFraming(sc.framing);
  o.max_connections = sc.max_connections;
  o.idle_timeout_ms = int64_t{sc.idle_timeout_s} * 1000;
  o.rcvbuf_bytes = sc.receive_buffer_bytes;
  return o;
}

}  // namespace

absl::Status Daemon::createSources() {
  for (size_t i = 0; i < config_.sources.size(); ++i) {
    const SourceConfig& sc = config_.sources[i];
    auto id = static_cast<uint16_t>(i);
    std::string error;
    std::unique_ptr<dataplane::Source> source;
    // Queue views of a dpdk source with rx_queues > 1, drained by the pipeline like sources.
    std::vector<std::unique_ptr<dataplane::Source>> dpdk_queues;
    if (sc.type == "file") {
      auto o = commonSourceOptions<dataplane::FileSourceOptions>(sc, id);
      o.paths = sc.paths;
      o.pace = sc.pace == "event_time" ? dataplane::Pace::kEventTime : dataplane::Pace::kFast;
      o.speed = sc.speed;
      o.max_pace_wait_s = sc.max_pace_wait_s;
      source = dataplane::FileSource::create(std::move(o), metrics_, error);
      has_finite_sources_ = true;
    } else if (sc.type == "udp") {
      auto o = commonSourceOptions<dataplane::UdpSourceOptions>(sc, id);
      o.listen = sc.listen;
      o.rcvbuf_bytes = sc.receive_buffer_bytes;
      source = dataplane::UdpSource::create(std::move(o), metrics_, error);
    } else if (sc.type == "tcp") {
      auto o = streamSourceOptions<dataplane::TcpSourceOptions>(sc, id);
      source = dataplane::TcpSource::create(std::move(o), metrics_, error);
    } else if (sc.type == "tls") {
      auto o = streamSourceOptions<dataplane::TlsSourceOptions>(sc, id);
      o.certificate_file = sc.certificate;
      o.private_key_file = sc.private_key;
      o.ca_file = sc.ca_file;
      o.verify_client = parseVerifyClient(sc.verify_client);
      source = dataplane::TlsSource::create(std::move(o), metrics_, error);
    } else if (sc.type == "dpdk") {
      auto o = commonSourceOptions<dataplane::DpdkSourceOptions>(sc, id);
      o.eal_args = sc.eal_args;
      o.port = sc.port;
      o.udp_ports = sc.udp_ports;
      o.burst_size = sc.burst_size;
      o.mbuf_pool_size = sc.mbuf_count;
      o.rx_queues = sc.rx_queues;
      o.lcores = sc.lcores;
      o.rx_descriptors = sc.rx_descriptors;
      o.idle_sleep_us = sc.idle_sleep_us;
      o.reassemble_fragments = sc.reassemble_fragments;
      o.fragment_max_flows = sc.fragment_max_flows;
      o.fragment_timeout_ms = sc.fragment_timeout_ms;
      o.exception = sc.exception == "kernel" ? dataplane::ExceptionPath::kKernel
                                             : dataplane::ExceptionPath::kDrop;
      o.exception_port = sc.exception_port;
      if (dataplane::DpdkSource::validateOptions(o, error)) {
        auto dpdk = std::make_unique<dataplane::DpdkSource>(std::move(o), metrics_);
        for (uint16_t q = 1; q < dpdk->rxQueueCount(); ++q) {
          dpdk_queues.push_back(dpdk->queueSource(q));
        }
        source = std::move(dpdk);
      }
    }
    if (source == nullptr) {
      const std::string where =
          sc.where.text.empty() ? absl::StrCat("sources[", i, "]") : sc.where.text;
      return absl::InvalidArgumentError(absl::StrCat(where, " ", sc.name, ": ", error));
    }
    VIGIL_LOG_INFO("source configured source={} type={} tenant={}", sc.name, sc.type, sc.tenant);
    sources_.push_back(std::move(source));
    source_types_.push_back(sc.type);
    for (auto& queue : dpdk_queues) {
      sources_.push_back(std::move(queue));
      source_types_.push_back(sc.type);
    }
  }
  return absl::OkStatus();
}

absl::Status Daemon::openAuth() {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create state_dir ", config_.state_dir, ": ", ec.message()));
  }
  auto auth = AuthStore::open(AuthStore::defaultPath(config_.state_dir));
  if (!auth.ok()) return auth.status();
  auth_ = std::move(*auth);
  auto audit = AuditLog::open(AuditLog::defaultPath(config_.state_dir));
  if (!audit.ok()) return audit.status();
  audit_ = std::move(*audit);

  const std::set<std::string> tenants = configuredTenants(config_);
  for (const std::string& tenant : tenants) {
    // A tenant name the token store rejects still works for events; only tokens cannot
    // be scoped to it, which the warning says.
    if (absl::Status s = auth_->ensureTenant(tenant); !s.ok()) {
      VIGIL_LOG_WARN("tenant not registered for API tokens tenant={} error=\"{}\"", tenant,
                     logText(std::string(s.message())));
    }
  }
  absl::StatusOr<bool> has_admin = auth_->hasActiveAdmin();
  if (has_admin.ok() && !*has_admin) {
    VIGIL_LOG_WARN(
        "no active admin token in {}; create one with: vigilctl tokens bootstrap --state-dir {}",
        auth_->path(), config_.state_dir);
  }
  VIGIL_LOG_INFO("api auth ready tokens={} audit={} tenants={}", auth_->path(), audit_->path(),
                 tenants.size());
  return absl::OkStatus();
}

absl::Status Daemon::startApi() {
  if (auto st = openAuth(); !st.ok()) return st;
  ApiServerOptions options;
  options.listen = config_.api_listen;
  options.tls.cert_file = config_.api_tls_certificate;
  options.tls.key_file = config_.api_tls_private_key;
  options.tls.client_ca_file = config_.api_tls_client_ca_file;
  options.metrics_public_on_loopback = config_.api_metrics_public_on_loopback;
  options.auth = auth_.get();
  options.audit = audit_.get();
  // Base64 evidence uploads are 4/3 the file size; leave room for the JSON around them.
  options.max_payload_bytes = std::max<size_t>(
      options.max_payload_bytes, static_cast<size_t>(config_.evidence_max_bytes / 3 * 4 + 4096));
  api_ = std::make_unique<ApiServer>(*store_, metrics_, options);
  api_->setReadinessCheck([this] { return readiness(); });
  // The status lists every source and its tenant, so only admins read it.
  api_->addRoute("GET", "/api/v1/status", [this](const ApiRequest&) -> absl::StatusOr<ApiResponse> {
    nlohmann::json sources = nlohmann::json::array();
    for (size_t i = 0; i < sources_.size(); ++i) {
      sources.push_back({{"name", sources_[i]->name()},
                         {"type", source_types_[i]},
                         {"tenant", sources_[i]->tenant()},
                         {"finished", sources_[i]->finished()},
                         {"queued", sources_[i]->ring().size()}});
    }
    nlohmann::json body = {{"version", VIGIL_VERSION},
                           {"uptime_s", (monotonicNs() - start_ns_) / 1'000'000'000},
                           {"replay_done", replayDone()},
                           {"sources", sources}};
    ApiResponse response;
    response.body = body.dump();
    return response;
  }, RouteAccess::kAdmin);
  addIntelRoutes();
  if (runner_) runner_->addRoutes(*api_, /*trust_unauthenticated=*/false);
  content_->setTenantStore(auth_.get());
  content_->addRoutes(*api_);
  addConfigRoutes();
  if (auto st = api_->start(); !st.ok()) return st;
  VIGIL_LOG_INFO("api listening addr={}", api_->address());
  return absl::OkStatus();
}

namespace {

// Returns an error naming `key` when the folder `dir` neither exists as a writable folder
// nor can be created. A missing folder is probed by creating and removing its first missing
// level, so the check leaves nothing behind.
absl::Status checkFolderUsable(const std::string& key, const std::string& dir) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(dir, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(key, ": '", dir, "': ", ec.message()));
  std::filesystem::path missing;
  while (!path.empty() && !std::filesystem::exists(path, ec)) {
    missing = path;
    if (path == path.parent_path()) break;
    path = path.parent_path();
  }
  if (!std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", dir, "' cannot be a folder, because ",
                                                   path.string(), " is not one"));
  }
  if (missing.empty()) {
    if (access(path.c_str(), W_OK | X_OK) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": folder '", dir,
                                                     "' is not writable (", std::strerror(errno),
                                                     "); fix its permissions or choose another"));
    }
    return absl::OkStatus();
  }
  if (!std::filesystem::create_directory(missing, ec) || ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, ": folder '", dir, "' cannot be created in ", path.string(), " (",
        ec ? ec.message() : std::string("it appeared meanwhile"), "); choose another folder"));
  }
  std::filesystem::remove(missing, ec);
  return absl::OkStatus();
}

}  // namespace

absl::Status Daemon::checkFolders() const {
  const auto folderOf = [](const std::string& file) {
    return std::filesystem::path(file).parent_path().string();
  };
  if (auto st = checkFolderUsable(config_.state_dir_key.text, config_.state_dir); !st.ok()) {
    return st;
  }
  if (auto st = checkFolderUsable(config_.case_db_key.text, folderOf(config_.case_db)); !st.ok()) {
    return st;
  }
  if (auto st = checkFolderUsable(config_.evidence_dir_key.text, config_.evidence_dir); !st.ok()) {
    return st;
  }
  if (auto st = checkFolderUsable("playbooks.db", folderOf(config_.playbooks.db)); !st.ok()) {
    return st;
  }
  if (!config_.alerts_output.empty() && config_.alerts_output != "stdout") {
    if (auto st =
            checkFolderUsable(config_.alerts_output_key.text, folderOf(config_.alerts_output));
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status Daemon::lockStateDir() {
  if (auto st = checkFolderUsable("state_dir", config_.state_dir); !st.ok()) return st;
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create state_dir ", config_.state_dir, ": ", ec.message()));
  }

  const std::string path = (std::filesystem::path(config_.state_dir) / "vigild.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the state_dir lock file ", path, ": ", std::strerror(errno)));
  }

  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    // The holder wrote its pid after it took the lock; it may be empty for a moment.
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
    }
    std::string holder = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
    holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
    if (holder.empty()) holder = "(unknown)";
    return absl::AlreadyExistsError(absl::StrCat("state folder ", config_.state_dir,
                                                 " is in use by vigild pid ", holder,
                                                 "; stop it or use another state_dir"));
  }

  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock still works without the pid; only the message for a second vigild suffers.
    VIGIL_LOG_WARN("cannot write the pid into the state_dir lock file path={} error={}", path,
                   std::strerror(errno));
  }
  state_lock_fd_ = fd;
  VIGIL_LOG_INFO("state_dir locked path={} pid={}", path, ::getpid());
  return absl::OkStatus();
}

absl::Status Daemon::validate() {
  if (auto st = checkFolders(); !st.ok()) return st;
  if (auto st = loadIntel(); !st.ok()) return st;
  if (auto st = loadRules(); !st.ok()) return st;
  // Always built: it runs the default-case playbook, which files alerts in cases, and
  // with playbooks.default_case false it still takes the stored alerts for the
  // playbooks under playbooks.paths (there may be none).
  auto runner = PlaybookRunner::create(config_.playbooks, metrics_);
  if (!runner.ok()) return runner.status();
  runner_ = std::move(*runner);
  return createSources();
}

absl::Status Daemon::start() {
  if (options_.check_only) {
    return absl::FailedPreconditionError(
        "this Daemon was built for --check-config, whose rule engines have no room for keys");
  }
  start_ns_ = monotonicNs();
  VIGIL_LOG_INFO("vigild starting version={} config={} sources={} workers={} shards={}",
                 VIGIL_VERSION, config_.config_path, config_.sources.size(), config_.workers,
                 config_.shards);

  // Before anything under state_dir is opened, so a second vigild touches nothing there.
  if (auto st = lockStateDir(); !st.ok()) return st;
  if (auto st = validate(); !st.ok()) return st;
  // Exported at 0 before the first reload, so that increase(...{result="rejected"})
  // also fires on the first rejected reload.
  configReloadCounter("applied");
  configReloadCounter("rejected");

  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(config_.case_db).parent_path(), ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the folder of api.case_db ", config_.case_db, ": ", ec.message()));
  }
  CaseStoreOptions store_options;
  store_options.evidence_dir = config_.evidence_dir;
  store_options.max_evidence_bytes = config_.evidence_max_bytes;
  store_options.sla = config_.sla;
  auto store = CaseStore::open(config_.case_db, store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  // Stored content versions replace the configured rules before the checkpoint is
  // restored, so the checkpoint lands in the engine that will run.
  if (auto st = startContent(); !st.ok()) return st;
  restoreCheckpoint();
  // Alerts reach playbooks through the case sink: it stores each batch in the alert
  // inbox, then hands the alerts to the runner, whose default-case playbook files them
  // in cases. So every run starts on an alert that is already on disk.
  if (auto st = runner_->start(store_.get(), &intel_->store()); !st.ok()) return st;
  absl::StatusOr<int64_t> waiting = store_->queuedAlertCount();
  if (!waiting.ok()) return waiting.status();
  if (*waiting > 0 && config_.playbooks.default_case) {
    VIGIL_LOG_INFO("alerts of an earlier run in the alert inbox, filing them now count={}",
                   *waiting);
  } else if (*waiting > 0) {
    VIGIL_LOG_WARN("alerts in the alert inbox stay in no case, because "
                   "playbooks.default_case is false count={} case_db={}",
                   *waiting, config_.case_db);
  }
  CaseSinkOptions sink_options;
  sink_options.filer = runner_.get();
  // The pipeline assigns events only to these tenants, plus "default".
  const std::set<std::string> tenants = configuredTenants(config_);
  sink_options.tenants.assign(tenants.begin(), tenants.end());
  sink_options.tenants.push_back("default");
  case_sink_ = std::make_unique<CaseSink>(*store_, metrics_, sink_options);
  std::vector<correlate::AlertSink*> sinks = {case_sink_.get()};
  if (!config_.alerts_output.empty()) {
    auto writer = JsonLinesAlertWriter::open(config_.alerts_output, metrics_);
    if (!writer.ok()) return writer.status();
    alert_writer_ = std::move(*writer);
    sinks.push_back(alert_writer_.get());
  }

  correlate::PipelineOptions popts;
  popts.batch_size = config_.batch_size;
  popts.default_utc_offset_s = config_.default_utc_offset_s;
  popts.max_message_bytes = 0;
  for (const SourceConfig& sc : config_.sources) {
    popts.max_message_bytes = std::max(popts.max_message_bytes, sc.max_message_bytes);
  }
  if (popts.max_message_bytes == 0) popts.max_message_bytes = dataplane::kDefaultMaxMessageBytes;
  popts.tenant_rules = tenantRules(config_.tenant_rules);
  for (const TenantQuotaConfig& quota : config_.tenant_quotas) {
    popts.tenant_quotas.push_back({quota.tenant, quota.max_events_per_second, quota.burst});
  }
  std::vector<dataplane::Source*> raw_sources;
  for (auto& s : sources_) raw_sources.push_back(s.get());
  pipeline_ = std::make_unique<correlate::Pipeline>(raw_sources, &intel_->store(), rules_->slot(),
                                                    sinks, metrics_, popts);

  // Everything is built and validated; only now do sockets open.
  for (size_t i = 0; i < sources_.size(); ++i) {
    std::string error;
    if (sources_[i]->start(error)) continue;
    if (source_types_[i] == "dpdk") {
      // The kernel sources still work without DPDK (no NIC, no hugepages, no driver).
      VIGIL_LOG_WARN("dpdk source not started, running on kernel sources source={} error=\"{}\"",
                     sources_[i]->name(), logText(error));
      metrics_.counter("vigil_sources_failed_total", "Sources that could not start",
                       {{"source", sources_[i]->name()}})
          .add();
      continue;
    }
    stop();
    return absl::UnavailableError(
        absl::StrCat("source ", sources_[i]->name(), " could not start: ", error));
  }

  if (config_.api_enabled) {
    if (auto st = startApi(); !st.ok()) {
      stop();
      return st;
    }
  }

  // The arena caps the pipeline at pipeline.workers threads, whatever the machine has.
  pipeline_thread_ = std::thread([this] {
    nameThisThread("vigil-pipeline");
    tbb::task_arena arena(static_cast<int>(config_.workers));
    pipeline_started_.store(true, std::memory_order_release);
    arena.execute([this] { pipeline_->run(); });
    pipeline_returned_.store(true, std::memory_order_release);
  });
  // With no file source there is nothing to replay, so the replay is done from the start.
  if (!has_finite_sources_) replay_done_.store(true, std::memory_order_release);
  intel_->start();
  return absl::OkStatus();
}

bool Daemon::checkReplayDone() {
  if (replay_done_.load(std::memory_order_acquire) || !has_finite_sources_) return false;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (source_types_[i] != "file") continue;
    if (!sources_[i]->finished() || sources_[i]->ring().size() != 0) return false;
  }
  // Every message taken from a ring has been through the whole pipeline or was dropped
  // there as oversize.
  if (metrics_.sum("vigil_pipeline_events_total") !=
      metrics_.sum("vigil_pipeline_events_done_total") +
          metrics_.sum("vigil_pipeline_oversize_dropped_total")) {
    return false;
  }
  case_sink_->flush();
  if (alert_writer_) alert_writer_->flush();
  replay_done_.store(true, std::memory_order_release);
  VIGIL_LOG_INFO("replay done events={} alerts={}", metrics_.sum("vigil_source_received_total"),
                 metrics_.sum("vigil_alerts_delivered_total"));
  writeSummary();
  return true;
}

void Daemon::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  timespec tick{0, 50'000'000};
  const int64_t checkpoint_interval_ns = int64_t{config_.checkpoint_interval_s} * 1'000'000'000;
  int64_t next_checkpoint_ns = monotonicNs() + checkpoint_interval_ns;
  while (true) {
    if (checkpoint_interval_ns > 0 && pipeline_ && monotonicNs() >= next_checkpoint_ns) {
      pipeline_->requestCheckpoint();
      next_checkpoint_ns = monotonicNs() + checkpoint_interval_ns;
    }
    if (pipeline_) {
      if (std::optional<std::string> file = pipeline_->takeCheckpoint()) {
        writeCheckpoint(*file, "periodic");
      }
    }
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGHUP) {
      VIGIL_LOG_INFO("signal received signal=SIGHUP action=\"reload configuration\"");
      (void)reloadConfig("SIGHUP");  // logged and counted inside
      continue;
    }
    if (sig == SIGINT || sig == SIGTERM) {
      VIGIL_LOG_INFO("signal received signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    checkReplayDone();
    // Without file sources, --exit-when-done has no replay to wait for, so vigild runs
    // until a signal stops it.
    if (options_.exit_when_done && has_finite_sources_ && replayDone()) break;
    if (pipeline_returned_.load(std::memory_order_acquire) && !options_.exit_when_done &&
        !config_.api_enabled) {
      break;  // nothing left to serve
    }
  }
  stop();
}

bool Daemon::pipelineDrained() const {
  for (const auto& source : sources_) {
    if (source->ring().size() != 0) return false;
  }
  return metrics_.sum("vigil_pipeline_events_total") ==
         metrics_.sum("vigil_pipeline_events_done_total") +
             metrics_.sum("vigil_pipeline_oversize_dropped_total");
}

absl::Status Daemon::readiness() const {
  if (stopping_.load(std::memory_order_acquire)) {
    return absl::UnavailableError("vigild is shutting down");
  }
  if (intel_ == nullptr || intel_->store().current() == nullptr) {
    return absl::UnavailableError("no indicator snapshot is published yet");
  }
  if (rules_ == nullptr || rules_->current() == nullptr) return absl::UnavailableError("the detection rules are not loaded");
  // A pipeline that has returned without stop() finished its finite sources. That is the
  // normal end of a replay, and the cases stay readable, so it counts as ready.
  if (!pipeline_started_.load(std::memory_order_acquire)) {
    return absl::UnavailableError("the pipeline thread has not started yet");
  }
  return absl::OkStatus();
}

void Daemon::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);

  // Every source stops reading new input first. Then each one frames what it had already
  // received (socket buffers, partial frames) into its ring, and the pipeline finishes
  // the rings, all within daemon.drain_timeout_s. A source waits for ring slots only
  // while the pipeline runs to free them.
  const bool pipeline_running =
      pipeline_thread_.joinable() && !pipeline_returned_.load(std::memory_order_acquire);
  const int64_t deadline =
      pipeline_running
          ? monotonicNs() + static_cast<int64_t>(config_.drain_timeout_s) * 1'000'000'000
          : 0;
  for (auto& source : sources_) source->beginStop(deadline);
  for (auto& source : sources_) source->stop();
  if (pipeline_running) {
    while (!pipelineDrained() && monotonicNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // The runner stops before the pipeline's last flush, so shutdown does not wait for a
  // backlog of default-case runs: those alerts stay in the inbox and are filed after the
  // next start. Other playbooks' runs not started yet are counted as dropped{shutdown}.
  if (runner_) runner_->stop();
  if (pipeline_) pipeline_->requestStop();
  if (pipeline_thread_.joinable()) pipeline_thread_.join();
  if (intel_) intel_->stop();
  // The pipeline has stopped, so the whole engine can be read from this thread.
  // run() handed every stage's state to the current engine before it returned.
  if (pipeline_ && rules_) writeCheckpoint(rules_->current()->checkpoint(), "shutdown");

  // Whatever is left after the deadline is counted, never dropped silently. These
  // messages were already counted as received by their source, so they get a pipeline
  // counter of their own rather than a second count at the source.
  for (auto& source : sources_) {
    size_t left = source->ring().size();
    if (left == 0) continue;
    metrics_
        .counter("vigil_pipeline_dropped_total",
                 "Received messages the pipeline did not process, by reason",
                 {{"reason", "shutdown"}, {"source", source->name()}})
        .add(left);
    VIGIL_LOG_WARN("messages not processed before shutdown source={} count={}", source->name(),
                   left);
  }
  if (case_sink_) case_sink_->flush();
  if (alert_writer_) alert_writer_->flush();
  if (api_) api_->stop();
  api_stopped_.store(true, std::memory_order_release);
  if (runner_) runner_->stop();
  if (start_ns_ != 0) {
    VIGIL_LOG_INFO("vigild stopped uptime_s={:.1f} events={} parsed={} parse_errors={} "
                   "indicator_hits={} alerts={} cases_opened={}",
                   static_cast<double>(monotonicNs() - start_ns_) / 1e9,
                   metrics_.sum("vigil_source_received_total"),
                   metrics_.sum("vigil_events_parsed_total"),
                   metrics_.sum("vigil_parse_errors_total"),
                   metrics_.sum("vigil_indicator_hits_total"),
                   metrics_.sum("vigil_alerts_delivered_total"),
                   metrics_.sum("vigil_cases_opened_total"));
    writeSummary();
  }
}

std::string Daemon::summary() const {
  auto line = [](std::string_view label, uint64_t value) {
    return absl::StrFormat("  %-22s %12s\n", label, withThousands(value));
  };
  std::string out = "Vigil summary\n";
  for (size_t i = 0; i < sources_.size(); ++i) {
    std::string label = absl::StrCat("source ", sources_[i]->name());
    out += line(label, metrics_.sum("vigil_source_received_total",
                                    {{"source", sources_[i]->name()}}));
  }
  out += line("events read", metrics_.sum("vigil_source_received_total"));
  out += line("dropped at sources", metrics_.sum("vigil_source_dropped_total"));
  out += line("read errors", metrics_.sum("vigil_source_read_errors_total"));
  out += line("left at shutdown", metrics_.sum("vigil_pipeline_dropped_total"));
  out += line("parsed", metrics_.sum("vigil_events_parsed_total"));
  out += line("parse errors (kept)", metrics_.sum("vigil_parse_errors_total"));
  out += line("truncated", metrics_.sum("vigil_events_truncated_total"));
  out += line("indicator hits", metrics_.sum("vigil_indicator_hits_total"));
  out += line("alerts", metrics_.sum("vigil_alerts_delivered_total"));
  out += line("cases opened", metrics_.sum("vigil_cases_opened_total"));
  if (store_) {
    CaseFilter all;
    all.limit = 1;
    if (auto page = store_->listCases(all); page.ok()) {
      out += line("cases in store", static_cast<uint64_t>(page->total));
    }
  }
  // The summary file is written at the end of a replay, while the API still serves
  // requests, and again at the stop. After the stop the API lines need vigild running.
  if (!config_.api_enabled) {
    out += "Where to look:\n";
  } else if (api_stopped_.load(std::memory_order_acquire)) {
    out += "Where to look (vigild has stopped: the files are ready now; the API lines work "
           "once vigild runs again):\n";
  } else {
    out += "Where to look (the API answers while vigild runs):\n";
  }
  if (config_.api_enabled) {
    std::string api = absl::StrCat(config_.api_tls_certificate.empty() ? "http://" : "https://",
                                   config_.api_listen);
    out += absl::StrCat("  cases      VIGIL_TOKEN=vgl_... vigilctl --api ", api, " cases list\n");
    out += absl::StrCat("             curl -H \"Authorization: Bearer $VIGIL_TOKEN\" ", api,
                        "/api/v1/cases\n");
    out += absl::StrCat("  counters   curl -H \"Authorization: Bearer $VIGIL_TOKEN\" ", api,
                        "/metrics\n");
    out += absl::StrCat("  token      vigilctl tokens bootstrap --state-dir ", config_.state_dir,
                        " (once)\n");
  }
  out += absl::StrCat("  case store ", config_.case_db, "\n");
  if (!config_.alerts_output.empty()) {
    out += absl::StrCat("  alerts     ", config_.alerts_output, "\n");
  }
  return out;
}

void Daemon::writeSummary() const {
  if (options_.summary_file.empty()) return;
  std::ofstream out(options_.summary_file, std::ios::trunc);
  out << summary();
  if (!out) {
    VIGIL_LOG_WARN("cannot write summary path={}", options_.summary_file);
  }
}

}  // namespace vigil::mgmt
