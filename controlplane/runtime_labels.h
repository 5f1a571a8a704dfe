#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/docker_client.h"
#include "rules/labels.h"

namespace bulkhead::controlplane {

// What a container runtime's Docker-compatible API (podman's `podman system service`) says of a
// CNI container: its own labels and image, which CNI does not carry.
struct RuntimeContainer {
  std::string containerId;
  bool found = false;
  rules::Labels labels;
  std::string image;
  std::string error;  // why not, when !found
};

// Parses GET /containers/<id>/json: labels and image; found=false when it is not an object.
RuntimeContainer parseRuntimeInspect(const std::string& containerId, const std::string& body);

// Asks the runtime on a thread of its own. The runtime cannot answer while it is in the middle
// of setting the container's network up -- podman holds the container's lock through the CNI
// ADD that asks -- so the question must not be asked from the ADD's path: the agent attaches
// the endpoint cut off (labels pending), and the answer, when the runtime gives it, completes
// the endpoint. Answers arrive through fd() (an eventfd) and take(), on the control thread.
class RuntimeLabels {
 public:
  RuntimeLabels(std::string socketPath, int timeoutSeconds);
  ~RuntimeLabels();
  RuntimeLabels(const RuntimeLabels&) = delete;
  RuntimeLabels& operator=(const RuntimeLabels&) = delete;

  void request(const std::string& containerId);
  int fd() const { return eventFd_; }
  std::vector<RuntimeContainer> take();
  const std::string& socketPath() const { return client_.socketPath(); }

 private:
  void run();

  DockerClient client_;
  int eventFd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> pending_;
  std::vector<RuntimeContainer> answers_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bulkhead::controlplane
