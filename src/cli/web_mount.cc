#include "cli/web_mount.h"

#include <filesystem>
#include <system_error>

namespace sandman {

WebMount::WebMount(const std::string& flag) {
  std::vector<std::string> dirs;
  if (!flag.empty()) {
    dirs.push_back(flag);
  } else {
    std::error_code ec;
    const std::string exe_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
    dirs = WebAssets::defaultDirs(exe_dir);
  }
  std::string why;
  for (const auto& d : dirs) {
    auto a = WebAssets::load(d);
    if (a.ok()) {
      assets_ = std::make_unique<WebAssets>(std::move(a).value());
      description_ = "dashboard at / from " + d + " (" + std::to_string(assets_->fileCount()) + " files)";
      return;
    }
    why += (why.empty() ? "" : "; ") + a.error().message;
  }
  description_ = "dashboard not installed: " + why;
}

bool WebMount::isPublic(const std::string& path) {
  return path == "/" || path.rfind("/assets/", 0) == 0 || path == "/favicon.svg";
}

void WebMount::registerRoutes(Router& router) {
  auto h = [this](const ApiRequest& req, ApiResponse& res) { answer(req, res); };
  router.get("/", h);
  router.get("/favicon.svg", h);
  router.get("/assets/{file}", h);
  // Static files, not API: documented so the table is whole, kept out of paths.
  router.document(std::string_view(R"json({"routes": {
    "GET /": {"operationId": "dashboard", "summary": "The web dashboard", "tag": "Dashboard", "public": true},
    "GET /favicon.svg": {"operationId": "dashboardFavicon", "summary": "The dashboard's icon", "tag": "Dashboard", "public": true},
    "GET /assets/{file}": {"operationId": "dashboardAsset", "summary": "The dashboard's scripts and styles", "tag": "Dashboard", "public": true}
  }})json"));
}

void WebMount::answer(const ApiRequest& req, ApiResponse& res) const {
  WebReply r = assets_ ? assets_->serve(req.path, req.get_header_value("if-none-match"),
                                        req.get_header_value("accept-encoding"))
                       : WebAssets::missing(description_);
  res.status = r.status;
  res.content_type = std::move(r.content_type);
  res.body = std::move(r.body);
  for (auto& [k, v] : r.headers) res.set_header(std::move(k), std::move(v));
}

}  // namespace sandman
