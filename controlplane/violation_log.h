#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "controlplane/log_sink.h"
#include "dataplane/violation_event.h"
#include "dpi/protocol_report.h"
#include "rules/labels.h"
#include "rules/policy_explain.h"

namespace bulkhead::controlplane {

// What the violation log says about an endpoint. Events carry only endpoint slots: the control
// plane owns the names and labels, and an endpoint may be gone by the time its event is written.
struct EndpointInfo {
  std::string name;
  rules::Labels labels;
};

// Maps an endpoint slot to its endpoint; nullopt when the slot holds none (any more). Slot
// UINT32_MAX (the peer is no endpoint) is never looked up.
using EndpointLookup = std::function<std::optional<EndpointInfo>(uint32_t slot)>;
// Another host's endpoint by its address (docs/multihost.md); nullopt when none is believed.
using RemoteLookup = std::function<std::optional<EndpointInfo>(const rules::IpAddress& ip)>;

// Explains a policy violation from the policy in force, or nullopt (the policy that judged the
// flow is gone, or the event is no policy violation).
using Explainer =
    std::function<std::optional<rules::Explanation>(const dataplane::ViolationEvent&)>;

// One violation as the log's JSON object; the schema is documented in docs/violations.md.
nlohmann::json violationToJson(const dataplane::ViolationEvent& event, const EndpointLookup& lookup,
                               const dpi::ProtocolReporter& protocols,
                               const Explainer& explain = nullptr);

// The violation log: one JSON object per line, to a file operators tail, ship or rotate, to
// stdout, or to syslog (controlplane/log_sink.h). Every line is written as soon as it is
// formatted, with one write(2) or one datagram, so a reader never waits for a buffer to fill and
// never sees half a line from us. I/O errors are returned and counted, never thrown: a full disk
// must not take the agent down with it.
//
// Not thread-safe: the control thread drains the workers' event ring and owns the log. reopen()
// is not async-signal-safe either; a SIGHUP handler should only set a flag the control thread
// acts on.
class ViolationLog {
 public:
  // Opens the target (a file's parent directories and the file, mode 0640 less the umask, are
  // created as needed; lines are appended). nullptr with *error set when it cannot be opened.
  static std::unique_ptr<ViolationLog> open(const LogTarget& target, EndpointLookup lookup,
                                            const dpi::ProtocolReporter& protocols,
                                            std::string* error);
  static std::unique_ptr<ViolationLog> open(const std::string& path, EndpointLookup lookup,
                                            const dpi::ProtocolReporter& protocols,
                                            std::string* error) {
    return open(LogTarget{path}, std::move(lookup), protocols, error);
  }

  ~ViolationLog();
  ViolationLog(const ViolationLog&) = delete;
  ViolationLog& operator=(const ViolationLog&) = delete;

  // Policy violations name the rule that came closest to allowing them, and what did not match.
  void setExplainer(Explainer explain) { explain_ = std::move(explain); }
  // Peers beyond the uplink with an endpoint's identity are named by this.
  void setRemoteLookup(RemoteLookup remote) { remote_ = std::move(remote); }

  // Appends one line; false (and counted) when it could not be written in full.
  bool write(const dataplane::ViolationEvent& event);

  // Opens a file again, for log rotation: once a rotator has renamed the file, lines go to a
  // new file under the old name. On failure the log keeps writing where it was and returns
  // false. Nothing to do for stdout, syslog or a file rotated by size.
  bool reopen(std::string* error);

  // The file's path, "stdout", or "syslog ADDRESS".
  const std::string& path() const { return path_; }
  uint64_t linesWritten() const { return linesWritten_; }
  uint64_t writeErrors() const { return writeErrors_; }

 private:
  ViolationLog(std::unique_ptr<LogSink> sink, EndpointLookup lookup,
               const dpi::ProtocolReporter& protocols);

  bool writeLine(const std::string& line);

  EndpointLookup lookup_;
  RemoteLookup remote_;
  Explainer explain_;
  const dpi::ProtocolReporter& protocols_;
  std::unique_ptr<LogSink> sink_;
  std::string path_;
  uint64_t linesWritten_ = 0;
  uint64_t writeErrors_ = 0;
  bool failing_ = false;  // the last write failed: more failures are counted, not logged
};

}  // namespace bulkhead::controlplane
