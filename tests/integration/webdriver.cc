#include "webdriver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The key of a web element reference in W3C WebDriver responses.
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";

// Flags for Chromium as root in a container, with every background service that would
// reach the internet switched off.
std::vector<std::string> chromiumArgs(const std::string& profile_dir) {
  return {"--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--no-first-run",
          "--no-default-browser-check",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-extensions",
          "--no-proxy-server",
          "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
          "--window-size=1280,1000",
          "--user-data-dir=" + profile_dir};
}

// Waits up to `timeout` for `pid` (a child) to exit; true when it did.
bool reapWithin(pid_t pid, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || done < 0) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

}  // namespace

std::string findInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream folders(path != nullptr ? path : "/usr/bin:/bin");
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    if (folder.empty()) continue;
    std::string candidate = folder + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

WebDriver::WebDriver(const std::string& chromedriver, const std::string& chromium,
                     const std::string& profile_dir, const std::string& log_path)
    : log_path_(log_path) {
  const int port = freePort(SOCK_STREAM);
  std::vector<std::string> args = {chromedriver, "--port=" + std::to_string(port),
                                   "--log-path=" + log_path};
  driver_pid_ = fork();
  if (driver_pid_ < 0) throw std::runtime_error("fork for chromedriver failed");
  if (driver_pid_ == 0) {
    // Its own process group, so teardown can stop chromedriver and every browser process
    // it started without touching anything else.
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(chromedriver.c_str(), argv.data());
    _exit(127);
  }
  setpgid(driver_pid_, driver_pid_);

  client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
  client_->set_read_timeout(seconds(60));
  auto deadline = std::chrono::steady_clock::now() + seconds(15);
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    if (auto res = client_->Get("/status"); res && res->status == 200) {
      ready = nlohmann::json::parse(res->body, nullptr, false)["value"].value("ready", false);
    }
    if (!ready) std::this_thread::sleep_for(milliseconds(50));
  }
  if (!ready) {
    stopProcess();
    throw std::runtime_error("chromedriver did not become ready on 127.0.0.1:" +
                             std::to_string(port) + " within 15 s; see " + log_path);
  }

  nlohmann::json options = {{"binary", chromium}, {"args", chromiumArgs(profile_dir)}};
  nlohmann::json capabilities = {
      {"alwaysMatch",
       {{"browserName", "chrome"},
        {"goog:chromeOptions", options},
        {"goog:loggingPrefs", {{"browser", "ALL"}}}}}};
  try {
    nlohmann::json created = command("POST", "/session", {{"capabilities", capabilities}});
    session_ = created.value("sessionId", "");
    browser_pid_ = created["capabilities"].value("goog:processID", -1);
    if (session_.empty()) {
      throw std::runtime_error("chromedriver returned no session id: " + created.dump());
    }
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    stopProcess();
    throw;
  }
}

WebDriver::~WebDriver() {
  if (!session_.empty()) {
    client_->set_read_timeout(seconds(10));
    client_->Delete("/session/" + session_);
  }
  stopProcess();
}

void WebDriver::stopProcess() {
  if (driver_pid_ > 0) {
    kill(driver_pid_, SIGTERM);
    if (!reapWithin(driver_pid_, seconds(5))) {
      kill(driver_pid_, SIGKILL);
      reapWithin(driver_pid_, seconds(5));
    }
    // Browser processes left in chromedriver's group after a failed session end.
    kill(-driver_pid_, SIGKILL);
    driver_pid_ = -1;
  }
  // Chromium may have moved to a group of its own. The session reported its main process,
  // which is still ours to stop when the session did not close it.
  if (browser_pid_ > 0) {
    kill(browser_pid_, SIGKILL);
    browser_pid_ = -1;
  }
}

nlohmann::json WebDriver::command(const std::string& method, const std::string& path,
                                  const nlohmann::json& body) {
  const std::string full = path == "/session" ? path : "/session/" + session_ + path;
  const std::string payload = body.is_null() ? "{}" : body.dump();
  httplib::Result res = method == "GET"      ? client_->Get(full)
                        : method == "DELETE" ? client_->Delete(full)
                                             : client_->Post(full, payload, "application/json");
  if (!res) {
    throw std::runtime_error("WebDriver " + method + " " + full +
                             " got no response: " + httplib::to_string(res.error()));
  }
  nlohmann::json reply = nlohmann::json::parse(res->body, nullptr, false);
  if (reply.is_discarded()) {
    throw std::runtime_error("WebDriver " + method + " " + full + " returned non-JSON: " +
                             res->body.substr(0, 300));
  }
  nlohmann::json value = reply.contains("value") ? reply["value"] : nlohmann::json();
  if (res->status != 200) {
    std::string error = value.is_object() ? value.value("error", "") : "";
    std::string message = value.is_object() ? value.value("message", "") : res->body;
    throw std::runtime_error("WebDriver " + method + " " + full + " failed with " +
                             std::to_string(res->status) + ": " + error + ": " +
                             message.substr(0, 600));
  }
  return value;
}

void WebDriver::navigate(const std::string& url) { command("POST", "/url", {{"url", url}}); }

nlohmann::json WebDriver::execute(const std::string& script, const nlohmann::json& args) {
  return command("POST", "/execute/sync", {{"script", script}, {"args", args}});
}

bool WebDriver::waitFor(const std::string& condition, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string script = "return Boolean(" + condition + ");";
  while (true) {
    if (execute(script).get<bool>()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

std::string WebDriver::find(const std::string& selector) {
  nlohmann::json found =
      command("POST", "/element", {{"using", "css selector"}, {"value", selector}});
  std::string id = found.is_object() ? found.value(kElementKey, "") : "";
  if (id.empty()) {
    throw std::runtime_error("WebDriver returned no element reference for " + selector + ": " +
                             found.dump());
  }
  return id;
}

void WebDriver::click(const std::string& selector) {
  command("POST", "/element/" + find(selector) + "/click", nlohmann::json::object());
}

void WebDriver::type(const std::string& selector, const std::string& text) {
  const std::string element = find(selector);
  command("POST", "/element/" + element + "/clear", nlohmann::json::object());
  command("POST", "/element/" + element + "/value", {{"text", text}});
}

std::string WebDriver::text(const std::string& selector) {
  return command("GET", "/element/" + find(selector) + "/text").get<std::string>();
}

std::vector<nlohmann::json> WebDriver::browserLog() {
  nlohmann::json entries = command("POST", "/se/log", {{"type", "browser"}});
  return entries.is_array() ? entries.get<std::vector<nlohmann::json>>()
                            : std::vector<nlohmann::json>{};
}

}  // namespace vigil::testing
