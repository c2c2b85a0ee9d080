// DockerRuntime: the Runtime over the Docker Engine API on a unix socket: a
// session is one container published on its direct port. Thread-safe:
// immutable after open(); each call uses its own HTTP handle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "model/image_name.h"
#include "runtime/runtime.h"

namespace sandman {

struct BindMount {
  std::string host_path;
  std::string container_path;
  bool read_only = false;
};

// One container as Docker is asked for it (POST /containers/create).
struct ContainerSpec {
  std::string name;
  std::string image;
  std::string user;  // "uid:gid"
  std::string hostname;
  std::string working_dir;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::map<std::string, std::string> labels;
  std::vector<BindMount> binds;
  std::string network;
  // One published TCP port: host_ip:host_port -> container_port.
  std::string publish_host_ip;
  int publish_host_port = 0;
  int container_port = 0;
  // Hardening and limits; 0 means "no limit".
  int64_t memory_bytes = 0;
  int64_t nano_cpus = 0;
  int64_t pids_limit = 0;
  // GPU devices (MIG or GPU uuids) handed over by the nvidia runtime
  // (HostConfig.DeviceRequests, driver "nvidia"); empty: none.
  std::vector<std::string> gpu_device_ids;
};

struct ContainerInfo {
  std::string id;
  std::string name;
  bool running = false;
  std::map<std::string, std::string> labels;
  // Docker's word for where the container stands ("running", "exited",
  // "created", ...), and its exit code once it has exited (-1: unknown).
  std::string state = {};
  int exit_code = -1;
};

// Docker labels of session containers.
inline constexpr const char* kDockerSessionLabel = "sandman.session";
inline constexpr const char* kDockerInstanceLabel = "sandman.instance";

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
  // Which daemon's containers these are (the sandman.instance label), so
  // several daemons can share one dockerd.
  std::string instance = "default";
  // The bridge network sessions join (runtime/session_network sets it up).
  std::string network = "sandman-sessions";
  // Where direct ports are published ("0.0.0.0": every address).
  std::string publish_ip = "0.0.0.0";
  // Docker has the nvidia runtime: hand GPUs over through DeviceRequests;
  // otherwise only NVIDIA_VISIBLE_DEVICES is set ("env-only").
  bool gpu_device_requests = false;
};

// Where sandman-init appears inside a container.
inline constexpr const char* kInitPathInContainer = "/.sandman/init";

class DockerRuntime final : public Runtime {
 public:
  // docker_host as in DOCKER_HOST: only "unix:///absolute/path" is accepted.
  // Does not connect; call ping() to find out whether dockerd answers.
  static Result<std::unique_ptr<DockerRuntime>> open(const std::string& docker_host,
                                                     DockerOptions options = {});

  // Runtime
  std::string engineName() const override { return "Docker"; }
  Status ping() override;
  bool directPorts() const override { return true; }
  bool schedulesGpus() const override { return false; }
  bool hostWorkspaces() const override { return true; }
  Result<std::string> launch(const SessionWorkload& w) override;
  Result<WorkloadInfo> inspect(const std::string& id) override;
  Result<WorkloadEndpoint> endpoint(const std::string& id, int direct_port) override;
  Status stop(const std::string& id) override { return removeContainer(id); }
  Result<std::vector<WorkloadInfo>> listOurs() override;

  // Docker's own nouns, for set-up (networks), tests and probes.
  Result<bool> imageExists(const std::string& image);
  // True when the engine has the nvidia runtime, so DeviceRequests work.
  Result<bool> hasNvidiaRuntime();
  // A bridge network with inter-container traffic disabled; created if absent.
  Status ensureNetwork(const std::string& name);
  Status removeNetwork(const std::string& name);
  // The host-side interface of a bridge network ("br-<id>"), for firewalling.
  Result<std::string> networkInterface(const std::string& name);
  Result<std::string> createContainer(const ContainerSpec& spec);  // returns the id
  Status startContainer(const std::string& id);
  // Force-removes; a container that is already gone is success.
  Status removeContainer(const std::string& id);
  // All containers (running or not) carrying a label: "key" or "key=value".
  Result<std::vector<ContainerInfo>> listContainers(const std::string& label_key);
  // kNotFound when absent.
  Result<ContainerInfo> inspectContainer(const std::string& id);

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

// The container a session runs as: hardened, its sshd files and workspace
// mounted, published on its direct port (exposed for unit tests).
ContainerSpec sessionContainerSpec(const SessionWorkload& w, const DockerOptions& options);

// The body of POST /containers/create for a spec (exposed for unit tests).
// Invalid when a bind path cannot be written in Docker's "host:container" form.
Result<std::string> dockerCreateBody(const ContainerSpec& spec, const DockerOptions& options = {});
}  // namespace sandman
