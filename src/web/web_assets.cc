#include "web/web_assets.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sandman {
namespace {

namespace fs = std::filesystem;

std::string_view contentType(std::string_view name) {
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.substr(name.size() - s.size()) == s; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json") || ends(".map")) return "application/json";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".woff2")) return "font/woff2";
  if (ends(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

Result<std::string> readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return invalid("cannot read " + p.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A strong validator from the bytes themselves, so it survives restarts and
// is the same on every replica serving the same build.
std::string etagOf(std::string_view body) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : body) h = (h ^ c) * 1099511628211ULL;
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

// The bundler names assets "<name>-<HASH>.<ext>" (HASH: 8 upper-case letters
// and digits), a name whose content cannot change.
bool hashedName(const std::string& name) {
  const size_t dot = name.rfind('.');
  const size_t dash = name.rfind('-', dot);
  if (dot == std::string::npos || dash == std::string::npos || dot - dash - 1 != 8) return false;
  for (size_t i = dash + 1; i < dot; ++i) {
    const char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool acceptsGzip(std::string_view accept_encoding) {
  // "gzip;q=0" refuses it; anything else naming gzip accepts it.
  const size_t at = accept_encoding.find("gzip");
  if (at == std::string_view::npos) return false;
  const std::string_view rest = accept_encoding.substr(at + 4, accept_encoding.find(',', at) - at - 4);
  return rest.find("q=0") == std::string_view::npos || rest.find("q=0.") != std::string_view::npos;
}

bool etagMatches(std::string_view if_none_match, const std::string& etag) {
  if (if_none_match == "*") return true;
  // The gzip form carries the same validator with a suffix (ETags differ per encoding).
  const std::string bare = etag.substr(0, etag.size() - 1);
  return if_none_match.find(bare) != std::string_view::npos;
}

void securityHeaders(WebReply& r) {
  // The dashboard runs only its own scripts and talks only to its own origin.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                         "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

std::vector<std::string> WebAssets::defaultDirs(const std::string& exe_dir) {
  return {exe_dir + "/web", exe_dir + "/../share/sandman/web"};
}

Result<WebAssets> WebAssets::load(const std::string& dir) {
  WebAssets w;
  w.dir_ = dir;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(dir) / "index.html", ec)) {
    return notFound("no dashboard in " + dir + " (index.html is missing)");
  }
  for (const char* sub : {"", "assets"}) {
    const fs::path base = fs::path(dir) / sub;
    if (!fs::is_directory(base, ec)) continue;
    fs::directory_iterator it(base, ec);
    if (ec) return invalid("cannot list " + base.string() + ": " + ec.message());
    for (const auto& e : it) {
      std::error_code probe;  // a missing twin or a dangling link is no error of the listing
      if (!e.is_regular_file(probe)) continue;
      const std::string name = e.path().filename().string();
      if (name.size() > 3 && name.substr(name.size() - 3) == ".gz") continue;
      auto body = readFile(e.path());
      if (!body.ok()) return body.error();
      File f;
      f.content_type = std::string(contentType(name));
      f.body = std::move(body).value();
      f.etag = etagOf(f.body);
      f.immutable = std::string(sub) == "assets" && hashedName(name);
      if (fs::is_regular_file(e.path().string() + ".gz", probe)) {
        auto gz = readFile(e.path().string() + ".gz");
        if (!gz.ok()) return gz.error();
        f.gzip = std::move(gz).value();
      }
      w.files_.emplace(std::string(*sub ? "/assets/" : "/") + name, std::move(f));
    }
  }
  return w;
}

WebReply WebAssets::serve(std::string_view path, std::string_view if_none_match,
                          std::string_view accept_encoding) const {
  WebReply r;
  securityHeaders(r);
  auto it = files_.find(path == "/" ? std::string_view("/index.html") : path);
  if (it == files_.end()) {
    r.status = 404;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "not found\n";
    return r;
  }
  const File& f = it->second;
  const bool gz = f.gzip && acceptsGzip(accept_encoding);
  const std::string etag = gz ? f.etag.substr(0, f.etag.size() - 1) + "-gz\"" : f.etag;
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", f.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (f.gzip) r.headers.emplace_back("Vary", "Accept-Encoding");
  if (!if_none_match.empty() && etagMatches(if_none_match, etag)) {
    r.status = 304;
    return r;
  }
  r.content_type = f.content_type;
  if (gz) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = *f.gzip;
  } else {
    r.body = f.body;
  }
  return r;
}

WebReply WebAssets::missing(const std::string& why) {
  WebReply r;
  securityHeaders(r);
  r.status = 503;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-store");
  std::string safe;
  for (char c : why) {
    if (c == '<') safe += "&lt;";
    else if (c == '>') safe += "&gt;";
    else if (c == '&') safe += "&amp;";
    else safe += c;
  }
  r.body =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sandman: dashboard not installed"
      "</title></head><body><h1>The web dashboard is not installed</h1><p>" + safe +
      "</p><p>Build it with <code>npm ci</code> and <code>npm run build</code> in <code>web/</code> (the set-up "
      "scripts do this), or start the daemon with <code>--web-root DIR</code>. The REST API under "
      "<code>/api/v1</code> works without it.</p></body></html>\n";
  return r;
}

}  // namespace sandman
