// WebAssets: the dashboard's built files (web/ bundled at set-up), held in
// memory and answered with their content type, an ETag and gzip when asked.
// Loaded once at start-up, then only read: concurrent serve() calls are safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sandman {

// What the server sends for one request; independent of the HTTP layer (web
// sits beside api, not above it), the daemon maps it onto its response.
struct WebReply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class WebAssets {
 public:
  // Every regular file directly in dir and in dir/assets, with "<file>.gz"
  // beside it taken as its precompressed form. Fails when dir/index.html is
  // missing: a half-installed dashboard is better refused than served.
  static Result<WebAssets> load(const std::string& dir);

  // Where the daemon looks without --web-root: beside the binary (a build
  // tree) and the installed share/ dir.
  static std::vector<std::string> defaultDirs(const std::string& exe_dir);

  // The answer to a GET of path ("/" is index.html). A hashed asset name never
  // changes content, so it is cached for a year; index.html is revalidated.
  WebReply serve(std::string_view path, std::string_view if_none_match, std::string_view accept_encoding) const;

  // The page "/" shows when no assets are installed, saying why and what to do.
  static WebReply missing(const std::string& why);

  const std::string& dir() const { return dir_; }
  size_t fileCount() const { return files_.size(); }

 private:
  struct File {
    std::string content_type;
    std::string body;
    std::optional<std::string> gzip;
    std::string etag;
    bool immutable = false;
  };
  std::string dir_;
  std::map<std::string, File, std::less<>> files_;  // by URL path, "/index.html", "/assets/app-XXXX.js"
};

}  // namespace sandman
