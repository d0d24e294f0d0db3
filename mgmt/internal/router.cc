#include "mgmt/internal/router.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "mgmt/internal/api_errors.h"

namespace vigil::mgmt::internal {

void Router::add(absl::string_view method, absl::string_view pattern, ApiHandler handler,
                 RouteAccess access) {
  routes_.push_back(
      {std::string(method), std::string(pattern), splitPath(pattern), std::move(handler), access});
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const Route& route : routes_) out.push_back({route.method, route.pattern, route.access});
  return out;
}

std::vector<std::string> Router::splitPath(absl::string_view path) {
  return absl::StrSplit(path, '/', absl::SkipEmpty());
}

bool Router::matchSegments(const Route& route, const std::vector<std::string>& path,
                           std::map<std::string, std::string>& params) {
  if (route.segments.size() != path.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& segment = route.segments[i];
    bool is_param = segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
    if (is_param) {
      found[segment.substr(1, segment.size() - 2)] = path[i];
    } else if (segment != path[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

ApiResponse Router::dispatch(ApiRequest& request) const { return dispatch(request, nullptr); }

const Router::Route* Router::find(const ApiRequest& request,
                                  std::map<std::string, std::string>& params,
                                  std::vector<std::string>& allowed) const {
  const std::vector<std::string> path = splitPath(request.path);
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> found;
    if (!matchSegments(route, path, found)) continue;
    if (route.method != method) {
      allowed.push_back(route.method);
      continue;
    }
    params = std::move(found);
    return &route;
  }
  return nullptr;
}

RouteAccess Router::accessFor(const ApiRequest& request) const {
  std::map<std::string, std::string> params;
  std::vector<std::string> allowed;
  const Route* matched = find(request, params, allowed);
  return matched != nullptr ? matched->access : RouteAccess::kToken;
}

ApiResponse Router::dispatch(ApiRequest& request, const Guard& guard) const {
  std::vector<std::string> allowed;
  std::map<std::string, std::string> params;
  const Route* matched = find(request, params, allowed);
  if (matched != nullptr) request.path_params = std::move(params);
  if (guard) {
    std::optional<ApiResponse> denied =
        guard(request, matched != nullptr ? matched->access : RouteAccess::kToken);
    if (denied) return *std::move(denied);
  }
  if (matched != nullptr) {
    const Route& route = *matched;
    try {
      absl::StatusOr<ApiResponse> response = route.handler(request);
      if (!response.ok()) return mgmt::errorResponse(response.status());
      return *std::move(response);
    } catch (const std::exception& e) {
      VIGIL_LOG_ERROR("api handler threw method={} path={} error=\"{}\"", request.method,
                      logText(request.path), logText(e.what()));
      return mgmt::errorResponse(absl::InternalError(
          absl::StrCat("internal error while serving ", request.method, " ", request.path)));
    }
  }
  if (!allowed.empty()) {
    std::string allow = absl::StrJoin(allowed, ", ");
    ApiResponse response = errorResponse(
        405, "method_not_allowed",
        absl::StrCat(request.method, " is not allowed on ", request.path, "; use ", allow));
    response.headers.emplace_back("Allow", allow);
    return response;
  }
  return mgmt::errorResponse(absl::NotFoundError(
      absl::StrCat("no endpoint at ", request.path, "; the API lives under /api/v1/")));
}

}  // namespace vigil::mgmt::internal
