// Throughput of TlsSource over loopback: one OpenSSL client writes batches of LF-framed
// syslog lines and the benchmark thread pops them from the ring. The client's encryption
// runs on the benchmark thread too, so the figure is for the whole exchange on one host.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/metrics.h"
#include "dataplane/tls_source.h"

namespace {

namespace fs = std::filesystem;
using vigil::dataplane::RawMessage;
using vigil::dataplane::TlsSource;
using vigil::dataplane::TlsSourceOptions;

constexpr int kBatch = 64;

// Writes a self-signed P-256 certificate and key into a new temporary folder with the
// openssl command. Returns the folder, or an empty path when openssl failed.
fs::path makeCertificate() {
  std::string templ = (fs::temp_directory_path() / "vigil-tls-bench-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return {};
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -keyout '" + templ + "/server.key' -out '" + templ +
      "/server.pem' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) return {};
  return templ;
}

void BM_TlsSourceThroughput(benchmark::State& state) {
  const fs::path dir = makeCertificate();
  if (dir.empty()) {
    state.SkipWithError("openssl could not create the test certificate");
    return;
  }
  vigil::MetricsRegistry metrics;
  TlsSourceOptions options;
  options.name = "tls_bench";
  options.listen = "127.0.0.1:0";
  options.certificate_file = (dir / "server.pem").string();
  options.private_key_file = (dir / "server.key").string();
  options.ring_capacity = 4096;
  std::string error;
  auto source = TlsSource::create(options, metrics, error);
  if (source == nullptr || !source->start(error)) {
    state.SkipWithError(error.c_str());
    fs::remove_all(dir);
    return;
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(source->boundPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    state.SkipWithError("TLS handshake with the source failed");
  }

  const std::string line =
      "<134>1 2026-12-04T18:00:00.000Z fw01 kernel - - - DROP IN=eth0 OUT= "
      "SRC=203.0.113.7 DST=198.51.100.2 PROTO=TCP SPT=51515 DPT=22 SYN\n";
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += line;

  for (auto _ : state) {
    if (SSL_write(ssl, batch.data(), static_cast<int>(batch.size())) <= 0) {
      state.SkipWithError("SSL_write failed");
      break;
    }
    for (int received = 0; received < kBatch;) {
      if (RawMessage* m = source->ring().front()) {
        benchmark::DoNotOptimize(m->len);
        source->ring().pop();
        ++received;
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));

  SSL_shutdown(ssl);
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  source->stop();
  fs::remove_all(dir);
}
BENCHMARK(BM_TlsSourceThroughput)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
