// OpenApi: the API's OpenAPI 3.1 document, generated from the Router's own
// route table, so a route the server dispatches cannot go unpublished.
//
// Modules document their routes beside them (Router::document) as operation
// objects with a few shorthands, expanded here so every operation says the
// same things the same way:
//   "tag": "Sessions"              -> "tags": ["Sessions"]
//   "errors": [400, 404]           -> those responses, each an Error body
//   "body": <schema>               -> a required application/json requestBody
//   "responses": {"200": {"json": <schema>, "description": ...}}
//                                  -> content application/json with that schema
//   "public": true                 -> answered without a token (security: [])
//   "role": "admin"                -> x-sandman-role (default: viewer for GET, admin otherwise)
// Path parameters the pattern captures are added when a doc leaves them out.
// Every operation also gets the errors every route may answer (401, 403 for
// writes, 415 with a body, and "default": any other Error).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/router.h"

namespace sandman {

// Whether a pattern belongs in the document's paths: /api/v1/... and the
// probes, the scrape and the document itself. The bare seed aliases and the
// dashboard's static files are dispatched but not published.
bool isPublishedPath(const std::string& pattern);

// "METHOD pattern" of every route with no doc. A bare alias counts as
// documented when its /api/v1 twin is.
std::vector<std::string> undocumentedRoutes(const Router& router);

// The whole document. Undocumented routes are listed anyway, marked
// "x-sandman-undocumented": true, rather than hidden.
nlohmann::json buildOpenApi(const Router& router, const std::string& version);

// The document's shared components: Error and the schemas every module uses.
const nlohmann::json& commonOpenApiSchemas();

}  // namespace sandman
