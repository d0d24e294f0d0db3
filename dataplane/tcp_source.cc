#include "dataplane/tcp_source.h"

#include "common/log.h"
#include "dataplane/internal/socket_util.h"
#include "dataplane/internal/stream_server.h"

namespace vigil::dataplane {

std::unique_ptr<TcpSource> TcpSource::create(TcpSourceOptions options, MetricsRegistry& metrics,
                                             std::string& error, Clock& clock) {
  if (!internal::checkStreamSettings(internal::streamSettings(options),
                                     internal::kNoReadBufferMax, error)) {
    return nullptr;
  }
  auto addr = internal::parseListenAddress(options.listen, error);
  if (!addr) {
    error = "source " + options.name + ": " + error;
    return nullptr;
  }
  return std::unique_ptr<TcpSource>(new TcpSource(std::move(options), *addr, metrics, clock));
}

TcpSource::TcpSource(TcpSourceOptions options, const internal::SocketAddress& addr,
                     MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      server_(std::make_unique<internal::StreamServer>(internal::streamSettings(options_), addr,
                                                       metrics, clock)) {}

TcpSource::~TcpSource() { stop(); }

bool TcpSource::start(std::string& error) {
  if (!server_->open(error)) return false;
  // Log before the thread starts. The first log call sets up spdlog's registry, and doing
  // that on one thread keeps ThreadSanitizer runs free of reports from inside spdlog.
  VIGIL_LOG_INFO(
      "source started source={} kind=tcp listen={} port={} framing={} ring={} max_message={} "
      "max_connections={}",
      options_.name, options_.listen, server_->boundPort(), framingModeName(options_.framing),
      server_->ring().capacity(), options_.max_message_bytes, options_.max_connections);
  server_->startThread();
  return true;
}

void TcpSource::beginStop(int64_t drain_deadline_ns) { server_->beginStop(drain_deadline_ns); }

void TcpSource::stop() {
  if (!server_->stop()) return;
  const SourceCounters& counters = server_->counters();
  VIGIL_LOG_INFO(
      "source stopped source={} received={} framing_errors={} accepted={} rejected={} "
      "dropped_shutdown={}",
      options_.name, counters.received->value(), counters.framing_errors->value(),
      server_->acceptedCount(), server_->rejectedCount(), counters.dropped_shutdown->value());
}

RawRing& TcpSource::ring() { return server_->ring(); }

uint16_t TcpSource::boundPort() const { return server_->boundPort(); }

const SourceCounters& TcpSource::counters() const { return server_->counters(); }

}  // namespace vigil::dataplane
