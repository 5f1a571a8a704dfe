// bulkhead status: the agent's state and every counter, in words or as its JSON.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/agent_call.h"
#include "cli/commands.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int statusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead status [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "status");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "status"}}, err, "status");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply) << "\n";
    return ExitOk;
  }
  out << "bulkheadd " << reply.value("version", "?") << " (pid " << reply.value("pid", 0) << "), "
      << reply.value("workers", 0) << " worker(s), policy generation "
      << reply.value("policyGeneration", 0) << "\n";
  const auto& counters = reply["counters"];
  const auto count = [&](const char* key) { return counters.value(key, uint64_t{0}); };
  // Every counter the JSON has, in words: what is dropped must not hide behind the totals.
  out << "packets: " << count("rxPackets") << " received, " << count("txPackets") << " sent, "
      << count("txDropped") << " lost on the way out, " << count("flooded") << " flooded ("
      << count("floodCopiesLost") << " copies lost)\n";
  out << "dropped:";
  uint64_t droppedTotal = 0;
  const auto dropped = counters.value("dropped", nlohmann::json::object());
  for (const auto& [reason, value] : dropped.items()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() != 0) {
      out << " " << text::escapeBytes(reason, text::Escape::InvalidUtf8AndControls) << " "
          << value.get<uint64_t>() << ",";
      droppedTotal += value.get<uint64_t>();
    }
  }
  out << (droppedTotal == 0 ? " nothing by policy," : "") << " spoofed " << count("spoofDropped")
      << ", blocked endpoint " << count("blockedDropped") << ", no route " << count("noRoute")
      << ", untagged " << count("untagged") << ", the host's own " << count("hostFrames") << "\n";
  out << "verdicts: " << count("resetsSent") << " TCP resets sent, " << count("rejectsSent")
      << " rejected senders told (" << count("rejectsLimited") << " held back by the rate limit), "
      << count("monitoredViolations") << " violations passed in monitor mode, "
      << count("violationsQueued") << " violation events (" << count("violationsLost") << " lost, "
      << count("violationsSuppressed") << " held back by the interval)\n";
  out << "flows: " << count("flows") << " tracked, " << count("flowsCreated") << " created, "
      << count("flowsEvicted") << " evicted; held for inspection " << count("held") << " ("
      << count("heldReleasedLate") << " released late, " << count("holdFull")
      << " with the hold full)\n";
  out << "idle: " << count("doorbellWaits") << " sleeps on the doorbell, " << count("doorbellRings")
      << " woken by traffic\n";
  if (const auto& log = reply["violationLog"]; log.is_object()) {
    out << "violation log: "
        << text::escapeBytes(log.value("path", ""), text::Escape::InvalidUtf8AndControls) << ", "
        << log.value("lines", uint64_t{0}) << " lines, " << log.value("writeErrors", uint64_t{0})
        << " write errors\n";
  }
  if (const auto& log = reply["flowLog"]; log.is_object()) {
    out << "flow log: "
        << text::escapeBytes(log.value("path", ""), text::Escape::InvalidUtf8AndControls) << ", "
        << log.value("lines", uint64_t{0}) << " lines, " << log.value("writeErrors", uint64_t{0})
        << " write errors, " << count("flowRecordsLost") << " records lost\n";
  }
  if (const auto& log = reply["auditLog"]; log.is_object()) {
    out << "audit log: "
        << text::escapeBytes(log.value("path", ""), text::Escape::InvalidUtf8AndControls) << ", "
        << log.value("lines", uint64_t{0}) << " lines, " << log.value("writeErrors", uint64_t{0})
        << " write errors\n";
  }
  if (const auto& learning = reply["learning"]; learning.is_object()) {
    if (learning.value("enabled", false)) {
      out << "learning: " << learning.value("edges", uint64_t{0}) << " observed edges of at most "
          << learning.value("capacity", uint64_t{0}) << " ("
          << learning.value("evicted", uint64_t{0}) << " forgotten for newer ones), "
          << learning.value("flowsRecorded", uint64_t{0}) << " flows recorded, "
          << count("judgedRecordsLost") << " lost, " << learning.value("unresolved", uint64_t{0})
          << " of endpoints gone before they were read\n";
    } else {
      out << "learning: off\n";
    }
  }
  if (const auto& metrics = reply["metrics"]; metrics.is_object()) {
    if (metrics["address"].is_string()) {
      out << "metrics: http://"
          << text::escapeBytes(metrics["address"].get<std::string>(),
                               text::Escape::InvalidUtf8AndControls)
          << "/metrics, " << metrics.value("scrapes", uint64_t{0}) << " scrapes\n";
    } else if (metrics["error"].is_string()) {
      out << "metrics: none ("
          << text::escapeBytes(metrics["error"].get<std::string>(),
                               text::Escape::InvalidUtf8AndControls)
          << ")\n";
    } else {
      out << "metrics: off\n";
    }
  }
  // Beyond one host (docs/multihost.md): the store, the hosts, what is believed and pending.
  if (const auto& kvstore = reply["kvstore"]; kvstore.is_object()) {
    const auto escaped = [&](const char* key) {
      return text::escapeBytes(kvstore.value(key, ""), text::Escape::InvalidUtf8AndControls);
    };
    out << "kvstore: " << escaped("state") << " for " << kvstore.value("sinceSeconds", uint64_t{0})
        << " s as host " << escaped("host") << ", "
        << kvstore.value("hosts", nlohmann::json::array()).size() << " hosts, "
        << kvstore.value("remoteEndpoints", uint64_t{0}) << " remote endpoints, "
        << kvstore.value("pendingIdentities", uint64_t{0}) << " label sets waiting for a number";
    if (kvstore["cacheAgeSeconds"].is_number_unsigned()) {
      out << ", directory " << kvstore["cacheAgeSeconds"].get<uint64_t>() << " s old";
    }
    out << "\n";
    if (kvstore["error"].is_string()) {
      out << "kvstore error: " << escaped("error") << "\n";
    }
  }
  if (const auto workers = reply.value("perWorker", nlohmann::json::array()); workers.size() > 1) {
    for (size_t i = 0; i < workers.size(); ++i) {
      out << "worker " << i << ": " << workers[i].value("rxPackets", 0) << " received, "
          << workers[i].value("flows", 0) << " flows, " << workers[i].value("handedOff", 0)
          << " handed to their owner, " << workers[i].value("fromPeers", 0)
          << " taken from the others\n";
    }
  }
  if (const auto& wire = reply["wire"]; wire.is_object()) {
    out << "wire: trunk " << wire["trunk"].value("kernelEnd", "") << " / "
        << wire["trunk"].value("port", "");
    if (const auto trunks = wire.value("trunks", nlohmann::json::array()); trunks.size() > 1) {
      out << " and " << trunks.size() - 1 << " more, one per worker";
    }
    out << " (" << wire.value("trunkDriver", "") << "), " << wire.value("tagsInUse", 0)
        << " tags in use, quarantine table bridge " << wire.value("quarantine", "") << "\n";
    const auto panel = wire.value("counters", nlohmann::json::object());
    out << "offload: " << wire.value("offload", "none") << ", "
        << panel.value("offloaded", uint64_t{0}) << " frames carried by the wire past the trunk ("
        << panel.value("offloadStale", uint64_t{0}) << " of voided flows sent to the trunk), "
        << count("offloadInstalled") << " directions offloaded, " << count("offloadFailed")
        << " refused, " << count("offloadWithdrawn") << " taken back\n";
  }
  for (const auto& segment : reply.value("segments", nlohmann::json::array())) {
    const std::string bridge = segment.value("bridge", "");
    const std::string uplink = segment.value("uplink", "");
    out << "segment " << segment.value("id", 0) << ": "
        << (bridge.empty() ? std::string("no bridge") : "bridge " + bridge)
        << (uplink.empty() ? std::string(", no uplink")
                           : ", uplink " + uplink + " (tag " +
                                 std::to_string(segment.value("uplinkTag", 0)) + ")")
        << "\n";
  }
  if (const auto& docker = reply["docker"]; docker.is_object()) {
    const auto& networks = docker["networks"];
    std::string scope = "every network";
    if (networks.is_array()) {
      scope = "networks";
      for (const auto& network : networks) {
        scope += " " + network.get<std::string>();
      }
    }
    out << "docker: " << scope << " of " << docker.value("socket", "") << ", "
        << (docker.value("connected", false)
                ? "connected (API " + docker.value("apiVersion", "") + ")"
                : std::string("not connected (retrying)"))
        << "\n";
  }
  out << "fail mode: " << (reply.value("failOpen", false) ? "open" : "closed") << "\n";
  out << "endpoints:\n";
  for (const auto& endpoint : reply["endpoints"]) {
    out << "  "
        << text::escapeBytes(endpoint.value("name", ""), text::Escape::InvalidUtf8AndControls)
        << "  identity " << endpoint.value("identity", 0);
    for (const auto& attachment : endpoint.value("attachments", nlohmann::json::array())) {
      const std::string bridge = attachment.value("bridge", "");
      out << "  " << attachment.value("interface", "") << " (tag " << attachment.value("tag", 0)
          << (bridge.empty() ? std::string("") : ", bridge " + bridge) << ")";
    }
    out << "\n";
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
