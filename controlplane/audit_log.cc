#include "controlplane/audit_log.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "text/json_text.h"
#include "text/time_text.h"

namespace bulkhead::controlplane {
namespace {

uint64_t nowNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
}

}  // namespace

std::unique_ptr<AuditLog> AuditLog::open(const LogTarget& target, std::string* error) {
  if (target.spec.empty()) {
    return std::unique_ptr<AuditLog>(new AuditLog(nullptr));
  }
  auto sink = openLogSink(target, error);
  if (!sink) {
    return nullptr;
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(sink)));
}

void AuditLog::write(nlohmann::json line) {
  if (!sink_) {
    return;
  }
  nlohmann::json out = {{"time", text::formatTimeNs(nowNs())}, {"kind", "audit"}};
  out.update(line);
  std::string error;
  if (sink_->write(text::dumpJson(out), &error)) {
    ++lines_;
  } else {
    if (writeErrors_++ == 0) {
      spdlog::error("audit log: {}", error);  // once: the journal has every event anyway
    }
  }
}

void AuditLog::policyApplied(const std::string& trigger, uint64_t generation,
                             const std::string& sha256, size_t policies) {
  spdlog::info("audit: policy applied trigger={} generation={} sha256={} policies={}", trigger,
               generation, sha256, policies);
  write({{"event", "policy-applied"},
         {"trigger", trigger},
         {"generation", generation},
         {"sha256", sha256},
         {"policies", policies}});
}

void AuditLog::policyRejected(const std::string& trigger, uint64_t generation,
                              const std::string& sha256, const std::vector<std::string>& errors) {
  spdlog::warn("audit: policy change rejected trigger={} generation={} sha256={} (kept)", trigger,
               generation, sha256);
  write({{"event", "policy-rejected"},
         {"trigger", trigger},
         {"generation", generation},
         {"sha256", sha256},
         {"errors", errors}});
}

void AuditLog::endpointAttached(const std::string& name, uint64_t identity,
                                const std::string& source, const std::string& interface) {
  write({{"event", "endpoint-attached"},
         {"endpoint", name},
         {"identity", identity},
         {"source", source},
         {"interface", interface}});
}

void AuditLog::endpointDetached(const std::string& name, const std::string& why) {
  write({{"event", "endpoint-detached"}, {"endpoint", name}, {"reason", why}});
}

void AuditLog::clusterPolicy(const std::string& verb, const nlohmann::json& names,
                             int64_t revision) {
  spdlog::info("audit: cluster policy {} {} at revision {}", verb, names.dump(), revision);
  write({{"event", "cluster-policy-" + verb}, {"policies", names}, {"revision", revision}});
}

bool AuditLog::reopen(std::string* error) {
  return !sink_ || sink_->reopen(error);
}

}  // namespace bulkhead::controlplane
