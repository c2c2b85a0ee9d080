// DockerRuntime: the Runtime over the Docker Engine API on a unix socket.
// Thread-safe: immutable after open(); each call uses its own HTTP handle.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "runtime/runtime.h"

namespace sandman {

class DockerRuntime final : public Runtime {
 public:
  // docker_host as in DOCKER_HOST: only "unix:///absolute/path" is accepted.
  // Does not connect; call ping() to find out whether dockerd answers.
  static Result<std::unique_ptr<DockerRuntime>> open(const std::string& docker_host);

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

 private:
  DockerRuntime(std::string docker_host, std::string socket_path);
  // Transport failures become "cannot reach Docker" errors; any status is returned.
  Result<HttpResponse> call(const std::string& method, const std::string& path,
                            const std::string& json_body = "") const;
  Status checkNetworkIsolated(const HttpResponse& inspect, const std::string& name) const;

  const std::string docker_host_;
  const HttpClient http_;
};

using DockerRuntimePtr = std::unique_ptr<DockerRuntime>;

// The body of POST /containers/create for a spec (exposed for unit tests).
// Invalid when a bind path cannot be written in Docker's "host:container" form.
Result<std::string> dockerCreateBody(const ContainerSpec& spec);

}  // namespace sandman
