// Routes that serve the web console: GET / and /console/ return index.html, and
// GET /console/<name> returns each embedded file. Every response carries a strict
// Content-Security-Policy and revalidates through its ETag.
#pragma once

#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"
#include "mgmt/internal/console_assets.h"
#include "mgmt/internal/router.h"

namespace vigil::mgmt::internal {

// Scripts, styles and images only from the appliance itself, fetch() only to it, no
// inline script or style, no framing. Trusted Types with no policy make the browser
// reject every HTML string assigned to innerHTML and similar sinks, so the console can
// only build pages from text nodes.
inline constexpr absl::string_view kConsoleContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

// Returns the Content-Type for a console file name by its extension, and
// "application/octet-stream" for an unknown extension.
absl::string_view consoleContentType(absl::string_view name);

// Builds the response for one console file: 200 with the body, or 304 without one when
// the request's If-None-Match names the file's current ETag.
ApiResponse consoleAssetResponse(const ConsoleAsset& asset, const ApiRequest& request);

// Adds a GET route for "/", "/console/" (both index.html) and "/console/<name>" for every
// embedded file. Unknown names under /console/ fall through to the router's 404.
void addConsoleRoutes(Router& router);

}  // namespace vigil::mgmt::internal
