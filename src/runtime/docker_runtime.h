// DockerRuntime: the Runtime over the Docker Engine API on a unix socket.
// Thread-safe: immutable after open(); each call uses its own HTTP handle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "model/image_name.h"
#include "runtime/runtime.h"

namespace sandman {

// What every session container gets, whatever core asks for.
struct DockerOptions {
  // json-file log rotation; an empty size leaves Docker's own log settings.
  std::string log_max_size = "10m";
  int log_max_files = 3;
  // Writable layer limit (StorageOpt size); 0: none. Only some storage
  // drivers honour it: probeWritableLayerLimit() tells.
  int64_t writable_layer_bytes = 0;
  // Host path of sandman-init, bind-mounted read-only and run as PID 1 with
  // the spec's command under it; empty: the command itself is PID 1.
  std::string init_path;
  // Images containers may be created from ("name:tag"; a bare name means
  // ":latest"); empty: any.
  std::vector<std::string> allowed_images;
};

// Where sandman-init appears inside a container.
inline constexpr const char* kInitPathInContainer = "/.sandman/init";

class DockerRuntime final : public Runtime {
 public:
  // docker_host as in DOCKER_HOST: only "unix:///absolute/path" is accepted.
  // Does not connect; call ping() to find out whether dockerd answers.
  static Result<std::unique_ptr<DockerRuntime>> open(const std::string& docker_host,
                                                     DockerOptions options = {});

  Status ping() override;
  Result<bool> imageExists(const std::string& image) override;
  Result<bool> hasNvidiaRuntime() override;
  Status ensureNetwork(const std::string& name) override;
  Status removeNetwork(const std::string& name) override;
  Result<std::string> networkInterface(const std::string& name) override;
  Result<std::string> createContainer(const ContainerSpec& spec) override;
  Status startContainer(const std::string& id) override;
  Status removeContainer(const std::string& id) override;
  Result<std::vector<ContainerInfo>> listContainers(const std::string& label_key) override;
  Result<ContainerInfo> inspectContainer(const std::string& id) override;

  const std::string& dockerHost() const { return docker_host_; }
  const DockerOptions& options() const { return options_; }
  // Creates (never starts) and removes a throw-away container of `image` with
  // the writable layer limit: ok when the storage driver takes it, kInvalid
  // with Docker's reason when it does not, other kinds when it cannot tell.
  Status probeWritableLayerLimit(const std::string& image);

 private:
  DockerRuntime(std::string docker_host, std::string socket_path, DockerOptions options);
  // Transport failures become "cannot reach Docker" errors; any status is returned.
  Result<HttpResponse> call(const std::string& method, const std::string& path,
                            const std::string& json_body = "") const;
  Status checkNetworkIsolated(const HttpResponse& inspect, const std::string& name) const;

  const std::string docker_host_;
  const HttpClient http_;
  const DockerOptions options_;
};

using DockerRuntimePtr = std::unique_ptr<DockerRuntime>;

// The body of POST /containers/create for a spec (exposed for unit tests).
// Invalid when a bind path cannot be written in Docker's "host:container" form.
Result<std::string> dockerCreateBody(const ContainerSpec& spec, const DockerOptions& options = {});



}  // namespace sandman
