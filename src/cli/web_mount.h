// The dashboard's place in the daemon: finds the built web assets (--web-root
// or beside the binary) and answers "/" and "/assets/*" from them, without the
// API token (the page logs in itself; the files hold no data).
#pragma once

#include <memory>
#include <string>

#include "api/http_util.h"
#include "api/router.h"
#include "web/web_assets.h"

namespace sandman {

class WebMount : public RouteModule {
 public:
  // flag: --web-root ("" = look beside the binary). Never fails: without
  // assets, "/" says so and the API serves on.
  explicit WebMount(const std::string& flag);
  void registerRoutes(Router& router) override;
  // Paths served without the API token.
  static bool isPublic(const std::string& path);
  // One line for the start-up log: where the dashboard comes from, or why not.
  const std::string& description() const { return description_; }
  bool loaded() const { return assets_ != nullptr; }

 private:
  void answer(const ApiRequest& req, ApiResponse& res) const;
  std::unique_ptr<WebAssets> assets_;
  std::string description_;
};

}  // namespace sandman
