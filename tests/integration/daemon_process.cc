#include "daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "mgmt/auth_store.h"

namespace vigil::testing {

namespace {

// Returns true when a socket of `type` can bind 127.0.0.1:`port`, and closes it again.
bool canBind(int type, int port) {
  const int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The first port of the kernel's range for outgoing connections, from
// /proc/sys/net/ipv4/ip_local_port_range (Linux's default when it cannot be read).
int ephemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 32768;
  if (!(in >> first)) return 32768;
  return first;
}

}  // namespace

int freePort(int type) {
  // Ports come from just below the ephemeral range, because an outgoing connection could take
  // a bind(0) port as its source port before vigild binds it ("Address already in use").
  // The random start differs per process, so parallel test binaries pick different ports.
  static std::mutex mutex;
  static std::set<int> handed_out;
  static uint32_t next = static_cast<uint32_t>(getpid()) * 2654435761u ^
                         static_cast<uint32_t>(std::chrono::steady_clock::now()
                                                   .time_since_epoch()
                                                   .count());
  int high = std::min(ephemeralLow(), 65536);
  int low = std::max(10000, high - 12000);
  // VIGIL_TEST_PORTS=LOW-HIGH confines the tests to a range of ports that a shared
  // machine set aside for them (HIGH exclusive).
  if (const char* range = std::getenv("VIGIL_TEST_PORTS"); range != nullptr) {
    int range_low = 0;
    int range_high = 0;
    if (std::sscanf(range, "%d-%d", &range_low, &range_high) != 2 || range_low < 1 ||
        range_high > 65536 || range_high <= range_low) {
      throw std::runtime_error(std::string("VIGIL_TEST_PORTS='") + range +
                               "' is invalid; expected LOW-HIGH such as 45000-45100");
    }
    low = range_low;
    high = range_high;
  }
  std::lock_guard lock(mutex);
  if (high - low >= 1000 || std::getenv("VIGIL_TEST_PORTS") != nullptr) {
    for (int attempt = 0; attempt < 2000; ++attempt) {
      next = next * 1664525u + 1013904223u;
      const int port = low + static_cast<int>((next >> 8) % static_cast<uint32_t>(high - low));
      if (handed_out.count(port) != 0 || !canBind(type, port)) continue;
      handed_out.insert(port);
      return port;
    }
  }
  if (std::getenv("VIGIL_TEST_PORTS") != nullptr) {
    throw std::runtime_error("no free port left in VIGIL_TEST_PORTS");
  }
  // Let the kernel choose when there is no room below the ephemeral range or every port tried
  // was taken.
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void sendUdp(int port, const std::string& message) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&addr),
         sizeof(addr));
  close(fd);
}

double metricSum(const std::string& text, const std::string& name) {
  double total = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

std::string makeTempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::string log_path,
                             std::string stdout_path)
    : log_path_(std::move(log_path)) {
  std::string binary = std::string(VIGIL_BINARY_DIR) + "/mgmt/vigild";
  std::vector<char*> argv;
  argv.push_back(binary.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    const int out = stdout_path.empty()
                        ? open("/dev/null", O_WRONLY)
                        : open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, STDOUT_FILENO);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && status_ == -1) stop();
}

int DaemonProcess::waitExit(std::chrono::milliseconds timeout) {
  if (status_ != -1) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int DaemonProcess::stop() {
  if (status_ != -1) return status_;
  kill(pid_, SIGTERM);
  int rc = waitExit(std::chrono::seconds(10));
  if (rc == -1) {
    kill(pid_, SIGKILL);
    waitExit(std::chrono::seconds(5));
    return -1;
  }
  return rc;
}

bool DaemonProcess::running() { return waitExit(std::chrono::milliseconds(0)) == -1; }

void DaemonProcess::signal(int signal) {
  if (pid_ > 0 && status_ == -1) kill(pid_, signal);
}

bool waitHealthy(int port, std::chrono::milliseconds timeout) {
  httplib::Client client("127.0.0.1", port);
  return eventually(
      [&] {
        auto res = client.Get("/healthz");
        return res && res->status == 200;
      },
      timeout);
}

std::string mintAdminToken(const std::string& state_dir, const std::string& name) {
  std::filesystem::create_directories(state_dir);
  auto store = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(state_dir));
  if (!store.ok()) {
    throw std::runtime_error("cannot open the token store in " + state_dir + ": " +
                             store.status().ToString());
  }
  mgmt::TokenRequest request;
  request.name = name;
  request.role = mgmt::Role::kAdmin;
  request.created_by = "integration test";
  auto issued = (*store)->createToken(request);
  if (!issued.ok()) throw std::runtime_error("cannot create a token: " + issued.status().ToString());
  return issued->token;
}

}  // namespace vigil::testing
