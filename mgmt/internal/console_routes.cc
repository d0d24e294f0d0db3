#include "mgmt/internal/console_routes.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vigil::mgmt::internal {
namespace {

constexpr absl::string_view kIndexName = "index.html";

struct ExtensionType {
  absl::string_view extension;
  absl::string_view content_type;
};

constexpr ExtensionType kContentTypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

// A strong validator from the content hash: it changes exactly when the file does.
std::string etagFor(const ConsoleAsset& asset) {
  return absl::StrCat("\"", asset.sha256.substr(0, 32), "\"");
}

// True when If-None-Match lists `etag` (weak or strong) or is "*".
bool matchesIfNoneMatch(const ApiRequest& request, absl::string_view etag) {
  for (const auto& [name, value] : request.headers) {
    if (!absl::EqualsIgnoreCase(name, "If-None-Match")) continue;
    for (absl::string_view candidate : absl::StrSplit(value, ',')) {
      candidate = absl::StripAsciiWhitespace(candidate);
      absl::ConsumePrefix(&candidate, "W/");
      if (candidate == "*" || candidate == etag) return true;
    }
  }
  return false;
}

void addSecurityHeaders(ApiResponse& response) {
  response.headers.emplace_back("Content-Security-Policy",
                                std::string(kConsoleContentSecurityPolicy));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  response.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  response.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

}  // namespace

absl::string_view consoleContentType(absl::string_view name) {
  for (const ExtensionType& entry : kContentTypes) {
    if (absl::EndsWithIgnoreCase(name, entry.extension)) return entry.content_type;
  }
  return "application/octet-stream";
}

ApiResponse consoleAssetResponse(const ConsoleAsset& asset, const ApiRequest& request) {
  ApiResponse response;
  const std::string etag = etagFor(asset);
  addSecurityHeaders(response);
  // File names carry no version, so the browser must ask again on every load; the ETag
  // keeps that request cheap (304, no body) until vigild is upgraded.
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("ETag", etag);
  response.content_type = std::string(consoleContentType(asset.name));
  if (matchesIfNoneMatch(request, etag)) {
    response.status = 304;
    return response;
  }
  response.body = std::string(asset.body);
  return response;
}

void addConsoleRoutes(Router& router) {
  const ConsoleAsset* index = nullptr;
  for (const ConsoleAsset& asset : consoleAssets()) {
    if (asset.name == kIndexName) index = &asset;
  }
  // NOTE: these routes must stay reachable without a token, because the browser loads
  // the page before the analyst has signed in.
  if (index != nullptr) {
    ApiHandler page = [index](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
      return consoleAssetResponse(*index, request);
    };
    router.add("GET", "/", page, RouteAccess::kPublic);
    router.add("GET", "/console", std::move(page), RouteAccess::kPublic);
  }
  // One route for every file: the name is looked up exactly in the embedded table, so
  // no path reaches anything but an embedded file, and one operation documents them all.
  router.add("GET", "/console/{file}",
             [](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
               const std::string name = request.pathParam("file");
               for (const ConsoleAsset& asset : consoleAssets()) {
                 if (asset.name == name) return consoleAssetResponse(asset, request);
               }
               return absl::NotFoundError(
                   absl::StrCat("the console has no file '", name, "'; open / for the console"));
             },
             RouteAccess::kPublic);
}

}  // namespace vigil::mgmt::internal
