// Route table of the API server: (method, path pattern) -> handler. Kept apart from
// cpp-httplib so routing rules (404 for unknown paths, 405 with Allow for known paths
// with the wrong method) are the same for every endpoint.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"

namespace vigil::mgmt::internal {

class Router {
 public:
  // Adds a route. Pattern segments are literals or "{name}", which matches one non-empty
  // segment and stores it in ApiRequest::path_params.
  void add(absl::string_view method, absl::string_view pattern, ApiHandler handler);

  // Runs the handler whose pattern and method match. Unknown paths get 404, known paths
  // with another method 405 with an Allow header, handler errors their mapped status,
  // and exceptions from handlers 500. Fills request.path_params on a match.
  ApiResponse dispatch(ApiRequest& request) const;

  // Returns every registered route in the order added, with the pattern as given to add().
  std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    ApiHandler handler;
  };

  static std::vector<std::string> splitPath(absl::string_view path);
  static bool matchSegments(const Route& route, const std::vector<std::string>& path,
                            std::map<std::string, std::string>& params);

  std::vector<Route> routes_;
};

}  // namespace vigil::mgmt::internal
