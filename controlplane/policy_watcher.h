#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rules/policy_loader.h"

namespace bulkhead::controlplane {

// Watches the policy files and directories with inotify so that an edit on disk is applied
// without a signal. Editors and config managers write in several steps (truncate, write,
// rename), so changes are reported once the paths have been quiet for `settleMs`.
class PolicyWatcher {
 public:
  // nullptr with the reason in `error` when inotify is unavailable.
  static std::unique_ptr<PolicyWatcher> open(const std::vector<std::string>& paths,
                                             std::string* error, uint64_t settleMs = 200);
  ~PolicyWatcher();
  PolicyWatcher(const PolicyWatcher&) = delete;
  PolicyWatcher& operator=(const PolicyWatcher&) = delete;

  int fd() const { return fd_; }
  // Reads pending events (call when fd() is readable, or any time: it never blocks). True once
  // a change has settled; it is then reported once.
  bool poll(uint64_t nowMs);

 private:
  PolicyWatcher(int fd, std::vector<std::string> files, uint64_t settleMs)
      : fd_(fd), files_(std::move(files)), settleMs_(settleMs) {}

  int fd_;
  std::vector<std::string> files_;  // file names whose directory is watched (empty: any file)
  uint64_t settleMs_;
  uint64_t lastEventMs_ = 0;
  bool pending_ = false;
};

// SHA-256 (hex) of the policy set as loaded: every file's path and content in load order. The
// audit trail names the exact policy in force with it.
std::string policyDigest(const std::vector<std::string>& files);
// The same over the files and then documents kept elsewhere (the cluster's), by name and text.
std::string policyDigest(const std::vector<std::string>& files,
                         const std::vector<rules::PolicyText>& texts);

}  // namespace bulkhead::controlplane
