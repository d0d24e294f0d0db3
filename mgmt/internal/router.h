// Route table of the API server: (method, path pattern) -> handler. Kept apart from
// cpp-httplib so routing rules (404 for unknown paths, 405 with Allow for known paths
// with the wrong method) are the same for every endpoint.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"

namespace vigil::mgmt::internal {

class Router {
 public:
  // Runs before the handler with the access level of the matched route (kToken for an
  // unknown path or a wrong method). A returned response is sent instead of running the
  // handler; nullopt lets the request through.
  using Guard = std::function<std::optional<ApiResponse>(ApiRequest&, RouteAccess)>;

  // Adds a route. Pattern segments are literals or "{name}", which matches one non-empty
  // segment and stores it in ApiRequest::path_params.
  void add(absl::string_view method, absl::string_view pattern, ApiHandler handler,
           RouteAccess access = RouteAccess::kToken);

  // Runs the handler whose pattern and method match. Unknown paths get 404, known paths
  // with another method 405 with an Allow header, handler errors their mapped status,
  // and exceptions from handlers 500. Fills request.path_params on a match.
  ApiResponse dispatch(ApiRequest& request) const;

  // Same, but calls `guard` first, so a request without valid credentials gets the guard's
  // response (such as 401) even on an unknown path.
  ApiResponse dispatch(ApiRequest& request, const Guard& guard) const;

  // Returns the access level of the route that dispatch() would run for `request`, or
  // kToken for an unknown path or a wrong method, as dispatch() passes to its guard.
  RouteAccess accessFor(const ApiRequest& request) const;

  // Every route in registration order.
  std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    ApiHandler handler;
    RouteAccess access = RouteAccess::kToken;
  };

  static std::vector<std::string> splitPath(absl::string_view path);
  // Returns the route whose pattern and method match and fills `params`, or null. Adds the
  // methods of routes whose pattern matches but method does not to `allowed`.
  const Route* find(const ApiRequest& request, std::map<std::string, std::string>& params,
                    std::vector<std::string>& allowed) const;
  static bool matchSegments(const Route& route, const std::vector<std::string>& path,
                            std::map<std::string, std::string>& params);

  std::vector<Route> routes_;
};

}  // namespace vigil::mgmt::internal
