// A small W3C WebDriver client for browser tests: starts Debian's chromedriver on a free
// loopback port, opens one headless Chromium session and sends commands over HTTP with
// cpp-httplib. Errors throw std::runtime_error with WebDriver's error and message, which
// GoogleTest reports as a failure of the running test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace vigil::testing {

// Returns the full path of `name` found in PATH, or an empty string.
std::string findInPath(const std::string& name);

class WebDriver {
 public:
  // Starts `chromedriver` (a path) on a free 127.0.0.1 port, logging to `log_path`, and
  // opens a session that runs `chromium` headless with a profile in `profile_dir`. Every
  // host name except 127.0.0.1 fails to resolve in the browser, so the session can only
  // reach loopback. Throws when chromedriver does not start or the session fails.
  WebDriver(const std::string& chromedriver, const std::string& chromium,
            const std::string& profile_dir, const std::string& log_path);

  // Ends the session (which closes the browser) and stops chromedriver; SIGKILLs both
  // process groups when they do not stop in time.
  ~WebDriver();

  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  void navigate(const std::string& url);

  // Runs `script` (a function body; `arguments` holds `args`) in the page and returns its
  // result.
  nlohmann::json execute(const std::string& script,
                         const nlohmann::json& args = nlohmann::json::array());

  // Polls the JavaScript expression `condition` every 50 ms until it is truthy. Returns
  // false when `timeout` passes first.
  bool waitFor(const std::string& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // WebDriver element id of the first element matching the CSS `selector`; throws when
  // none does.
  std::string find(const std::string& selector);
  void click(const std::string& selector);
  // Clears the input and types `text` into it with key events.
  void type(const std::string& selector, const std::string& text);
  // The element's rendered text.
  std::string text(const std::string& selector);

  // Browser console entries since the last call ({"level", "message"} objects).
  std::vector<nlohmann::json> browserLog();

  const std::string& logPath() const { return log_path_; }

 private:
  nlohmann::json command(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr);
  void stopProcess();

  pid_t driver_pid_ = -1;
  int browser_pid_ = -1;
  std::string log_path_;
  std::string session_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace vigil::testing
