// The Agent's Prometheus endpoint (docs/metrics.md): what a scrape reads, rendered on the control
// thread from the same counters `bulkhead status` shows.
#include <spdlog/spdlog.h>

#include <numeric>

#include "controlplane/agent.h"
#include "metrics/exposition.h"

namespace bulkhead::controlplane {

bool Agent::openMetrics(std::string* error) {
  if (config_.metricsAddress == "off") {
    return true;
  }
  std::string why;
  metrics_ = metrics::MetricsServer::open(config_.metricsAddress, &why);
  if (metrics_) {
    spdlog::info("metrics: http://{}/metrics", metrics_->address());
    return true;
  }
  if (config_.metricsAddressChosen) {
    *error = why;
    return false;
  }
  // Nobody asked for this port: another program holding it costs the metrics, not the agent.
  metricsError_ = why;
  spdlog::warn("{}; no metrics (set metricsAddress to serve them elsewhere)", why);
  return true;
}

std::string Agent::metricsText() {
  using metrics::Exposition;
  const auto perWorker = fastPath_->counters();
  dataplane::WorkerCounters total;
  for (const auto& counters : perWorker) {
    dataplane::addCounters(total, counters);
  }
  const dataplane::PipelineCounters& pipeline = total.pipeline;
  const auto drop = [&](dataplane::DropReason reason) {
    return pipeline.dropped[static_cast<size_t>(reason)];
  };
  const uint64_t dropped =
      std::accumulate(std::begin(pipeline.dropped), std::end(pipeline.dropped), uint64_t{0});

  Exposition out;
  out.gauge("bulkhead_info", "The agent's version and instance; always 1.");
  out.sample(uint64_t{1}, {{"version", BULKHEAD_VERSION}, {"instance", config_.instance}});

  out.counter("bulkhead_packets_total",
              "Packets the fast path judged, by verdict (frames of offloaded flows are in "
              "bulkhead_wire_frames_total).");
  out.sample(pipeline.forwarded, {{"verdict", "forwarded"}});
  out.sample(dropped, {{"verdict", "dropped"}});
  out.counter("bulkhead_bytes_total",
              "Bytes of the packets the fast path judged, by verdict; held packets count as "
              "forwarded until their flow is denied.");
  out.sample(pipeline.bytes - std::min(pipeline.bytes, pipeline.droppedBytes),
             {{"verdict", "forwarded"}});
  out.sample(pipeline.droppedBytes, {{"verdict", "dropped"}});

  out.counter("bulkhead_drops_total", "Packets dropped, by reason.");
  out.sample(drop(dataplane::DropReason::PolicyDenied), {{"reason", "policy"}});
  out.sample(total.spoofDropped, {{"reason", "spoofed"}});
  out.sample(drop(dataplane::DropReason::Malformed), {{"reason", "malformed"}});
  out.sample(drop(dataplane::DropReason::FlowTableFull), {{"reason", "flow_table_full"}});
  out.sample(drop(dataplane::DropReason::EndpointFlowLimit), {{"reason", "endpoint_flow_limit"}});
  out.sample(drop(dataplane::DropReason::FragmentNoFlow), {{"reason", "fragment_without_flow"}});
  out.sample(total.blockedDropped, {{"reason", "labels_pending"}});
  out.sample(total.noRoute, {{"reason", "no_route"}});
  out.sample(total.txDropped, {{"reason", "tx_ring_full"}});
  out.counter("bulkhead_flows_cut_total",
              "Flows denied after packets of theirs had passed (an L7 verdict, a policy change): "
              "cut with resets both ways.");
  out.sample(pipeline.flowsCut);
  out.counter("bulkhead_monitored_violations_total",
              "Packets a monitor-mode policy would have dropped (passed).");
  out.sample(pipeline.monitoredViolations);
  out.counter("bulkhead_rejects_sent_total",
              "TCP resets and ICMP unreachables sent to senders of rejected packets "
              "(denyAction: reject).");
  out.sample(total.rejectsSent);
  out.counter("bulkhead_rejects_limited_total",
              "Rejected packets dropped without an answer: the rate limit held it back.");
  out.sample(total.rejectsLimited);
  out.counter("bulkhead_resets_sent_total", "TCP resets sent to cut denied flows.");
  out.sample(total.resetsSent);

  out.gauge("bulkhead_flows", "Flows tracked now.");
  out.sample(uint64_t{total.flows});
  out.counter("bulkhead_flows_created_total", "Flows the fast path began tracking.");
  out.sample(pipeline.flowsCreated);
  out.counter("bulkhead_flows_ended_total", "Flows that ended: expired, closed or forgotten.");
  out.sample(pipeline.flowsExpired);
  out.counter("bulkhead_flows_evicted_total",
              "Idle flows ended to make room in a full table (flowTableFull: evict-idle).");
  out.sample(pipeline.flowsEvicted);
  out.counter("bulkhead_classifications_total",
              "Flows nDPI classified (or gave up on: Unknown), by protocol.");
  for (size_t id = 0; id < dataplane::CountedProtocols; ++id) {
    if (pipeline.classified[id] != 0) {
      const std::string name = id == dataplane::CountedProtocols - 1
                                   ? std::string("other")
                                   : catalog_->name(static_cast<uint16_t>(id));
      out.sample(pipeline.classified[id], {{"protocol", name}});
    }
  }

  out.counter("bulkhead_offload_installed_total",
              "Flow directions handed to the wire (offload: established).");
  out.sample(total.offloadInstalled);
  out.counter("bulkhead_offload_failed_total", "Flow directions the wire's map had no room for.");
  out.sample(total.offloadFailed);
  out.counter("bulkhead_offload_withdrawn_total",
              "Flow directions taken back from the wire (flow end, FIN/RST, new state).");
  out.sample(total.offloadWithdrawn);
  const wire::PatchPanelCounters panel = wire_->counters();
  out.counter("bulkhead_wire_frames_total", "Frames the patch panel passed, by path.");
  out.sample(panel.portToTrunk, {{"path", "port_to_trunk"}});
  out.sample(panel.trunkToPort, {{"path", "trunk_to_port"}});
  out.sample(panel.offloaded, {{"path", "offloaded"}});
  out.sample(panel.offloadStale, {{"path", "offload_stale"}});
  out.counter("bulkhead_wire_drops_total", "Frames the patch panel dropped, by reason.");
  out.sample(panel.portUnknown, {{"reason", "port_without_tag"}});
  out.sample(panel.portTagged, {{"reason", "port_frame_tagged"}});
  out.sample(panel.noTrunk, {{"reason", "no_trunk"}});
  out.sample(panel.trunkUntagged, {{"reason", "trunk_untagged"}});
  out.sample(panel.trunkUnknownTag, {{"reason", "trunk_unknown_tag"}});
  out.sample(panel.pushFailed, {{"reason", "tag_push_failed"}});

  out.gauge("bulkhead_endpoints", "Endpoints attached now, by where they came from.");
  std::map<std::string, uint64_t> bySource = {{"api", 0}, {"config", 0}, {"docker", 0}};
  for (const auto& endpoint : registry_->endpoints()) {
    ++bySource[endpoint.source];
  }
  for (const auto& [source, count] : bySource) {
    out.sample(count, {{"source", source}});
  }
  out.gauge("bulkhead_identities", "Identities allocated (one per distinct label set).");
  out.sample(uint64_t{registry_->identities().identities().size()});

  if (cluster_) {
    out.gauge("bulkhead_kvstore_up", "1 while the last request to etcd was answered, else 0.");
    out.sample(uint64_t{cluster_->connected() ? 1u : 0u});
    out.counter("bulkhead_kvstore_errors_total",
                "Requests to etcd that failed (no member answered, or an error).");
    out.sample(cluster_->storeErrors());
    out.histogram("bulkhead_kvstore_request_seconds",
                  "Requests to etcd by how long they took, failing over included (not watches).");
    out.sample(cluster_->storeSeconds());
    out.gauge("bulkhead_kvstore_remote_endpoints",
              "Endpoints of other hosts this host believes (docs/multihost.md).");
    out.sample(uint64_t{remote_.size()});
  }

  out.gauge("bulkhead_policy_generation", "The policy snapshot in force (counts compilations).");
  out.sample(policy_->generation());
  out.counter("bulkhead_policy_reloads_total",
              "Policy reloads after the start (file change, SIGHUP, API), by result.");
  out.sample(policy_->loadsApplied() - std::min<uint64_t>(1, policy_->loadsApplied()),
             {{"result", "applied"}});
  out.sample(policy_->loadsRejected(), {{"result", "rejected"}});
  out.histogram("bulkhead_policy_compile_seconds",
                "Time to compile the policy for the identities there are.");
  out.sample(policy_->compileSeconds());
  out.counter("bulkhead_state_publishes_total",
              "Forwarding states published to the workers (endpoint or policy changes).");
  out.sample(publishes_);

  out.counter("bulkhead_violation_log_lines_total", "Lines written to the violation log.");
  out.sample(violationLog_->linesWritten());
  out.counter("bulkhead_violation_log_write_errors_total",
              "Violation lines that could not be written (disk full, I/O error).");
  out.sample(violationLog_->writeErrors());
  out.counter("bulkhead_violations_suppressed_total",
              "Violation reports held back: the flow (or attachment) was reported less than "
              "violationIntervalSeconds ago.");
  out.sample(total.violationsSuppressed);
  out.counter("bulkhead_violations_lost_total",
              "Violation reports lost: the workers' event ring was full.");
  out.sample(total.violationsLost);
  if (edges_) {
    out.gauge("bulkhead_learned_edges", "Observed edges kept for policy suggest (learnedEdges).");
    out.sample(uint64_t{edges_->size()});
    out.counter("bulkhead_learned_flows_total", "Judged flows recorded as observed edges.");
    out.sample(edges_->flowsRecorded());
    out.counter("bulkhead_learned_edges_evicted_total",
                "Observed edges forgotten for new ones: the store was full.");
    out.sample(edges_->evicted());
    out.counter("bulkhead_learned_flows_lost_total",
                "Judged flows learning never saw: the workers' event ring was full.");
    out.sample(total.judgedRecordsLost);
  }

  const auto perWorkerFamily = [&](const char* name, const char* help, bool gauge,
                                   uint64_t (*field)(const dataplane::WorkerCounters&)) {
    gauge ? out.gauge(name, help) : out.counter(name, help);
    for (size_t i = 0; i < perWorker.size(); ++i) {
      out.sample(field(perWorker[i]), {{"worker", std::to_string(i)}});
    }
  };
  perWorkerFamily("bulkhead_worker_rx_packets_total", "Frames each worker received.", false,
                  [](const dataplane::WorkerCounters& c) { return c.rxPackets; });
  perWorkerFamily("bulkhead_worker_tx_packets_total", "Frames each worker sent.", false,
                  [](const dataplane::WorkerCounters& c) { return c.txPackets; });
  perWorkerFamily("bulkhead_worker_handoff_lost_total",
                  "Frames lost changing worker: the owner's inbox was full.", false,
                  [](const dataplane::WorkerCounters& c) { return c.handoffLost; });
  perWorkerFamily("bulkhead_worker_flows", "Flows each worker tracks now.", true,
                  [](const dataplane::WorkerCounters& c) { return uint64_t{c.flows}; });

  out.counter("bulkhead_api_connections_cut_total",
              "Local API clients cut off at their deadline or evicted for a newcomer.");
  out.sample(api_->cutOff());
  if (docker_) {
    out.gauge("bulkhead_docker_connected", "1 while the agent follows the Docker engine's events.");
    out.sample(uint64_t{docker_->connected() ? 1u : 0u});
  }
  return out.take();
}

}  // namespace bulkhead::controlplane
