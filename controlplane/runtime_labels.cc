#include "controlplane/runtime_labels.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http/curl_transfer.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {

RuntimeContainer parseRuntimeInspect(const std::string& containerId, const std::string& body) {
  RuntimeContainer out;
  out.containerId = containerId;
  std::string problem;
  const auto inspect = text::parseUntrusted(body, text::EngineAnswerLimits, &problem);
  if (!inspect || !inspect->is_object()) {
    out.error = "the runtime's answer is not a JSON object" + (inspect ? "" : ": " + problem);
    return out;
  }
  out.found = true;
  if (const auto* config = text::objectMember(*inspect, "Config")) {
    if (const auto* labels = text::objectMember(*config, "Labels")) {
      for (const auto& [key, value] : labels->items()) {
        if (value.is_string()) {
          out.labels[key] = value.get<std::string>();
        }
      }
    }
    out.image = text::stringMember(*config, "Image");
  }
  return out;
}

RuntimeLabels::RuntimeLabels(std::string socketPath, int timeoutSeconds)
    : client_(std::move(socketPath), timeoutSeconds),
      eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_([this] { run(); }) {}

RuntimeLabels::~RuntimeLabels() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  ::close(eventFd_);
}

void RuntimeLabels::request(const std::string& containerId) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(containerId);
  }
  wake_.notify_all();
}

std::vector<RuntimeContainer> RuntimeLabels::take() {
  uint64_t ignored;
  [[maybe_unused]] const ssize_t n = ::read(eventFd_, &ignored, sizeof ignored);
  std::lock_guard lock(mutex_);
  std::vector<RuntimeContainer> out;
  out.swap(answers_);
  return out;
}

void RuntimeLabels::run() {
  for (;;) {
    std::string id;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) {
        return;
      }
      id = pending_.front();
      pending_.pop_front();
    }
    RuntimeContainer answer;
    std::string error;
    const auto response = client_.get("/containers/" + http::urlEncode(id) + "/json", &error,
                                      text::EngineAnswerLimits.maxBytes);
    if (!response) {
      answer.containerId = id;
      answer.error = error;
    } else if (response->status != 200) {
      answer.containerId = id;
      answer.error = "the runtime answered HTTP " + std::to_string(response->status);
    } else {
      answer = parseRuntimeInspect(id, response->body);
    }
    {
      std::lock_guard lock(mutex_);
      answers_.push_back(std::move(answer));
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(eventFd_, &one, sizeof one);
  }
}

}  // namespace bulkhead::controlplane
