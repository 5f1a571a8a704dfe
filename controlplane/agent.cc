#include "controlplane/agent.h"

#include <poll.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>

#include "controlplane/endpoint_labels.h"
#include "wire/quarantine.h"

namespace bulkhead::controlplane {
namespace {

std::atomic<bool> stopRequested{false};
std::atomic<bool> reloadRequested{false};
// The wire offloads established flows only this long past the control loop's last turn: an
// agent that died (or hangs) fails closed within it, offloaded flows included.
constexpr unsigned OffloadKeepAliveSeconds = 3;

void onSignal(int signal) {
  if (signal == SIGHUP) {
    reloadRequested = true;
  } else {
    stopRequested = true;
  }
}

void installSignalHandlers() {
  struct sigaction action = {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  for (const int signal : {SIGTERM, SIGINT, SIGHUP}) {
    sigaction(signal, &action, nullptr);
  }
}

// A process of that pid runs (ours to ask about: kill with signal 0).
bool processRuns(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

uint64_t Agent::monotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

Agent::Agent(AgentConfig config) : config_(std::move(config)), names_{config_.instance} {
  dockerScope_.networks = config_.dockerNetworks;
  dockerScope_.namespaceLabel = config_.namespaceLabel;
  dockerScope_.namespaces = config_.namespaces;
}

Agent::~Agent() {
  stop();
}

nlohmann::json Agent::reloadPolicy(const std::string& trigger) {
  std::vector<std::string> errors;
  if (!policy_->load(&errors)) {
    for (const auto& error : errors) {
      spdlog::error("policy reload rejected: {}", error);
    }
    audit_->policyRejected(trigger, policy_->generation(), policy_->sha256(), errors);
    return {
        {"ok", false}, {"error", "policy rejected; the policy in force stays"}, {"errors", errors}};
  }
  dirty_ = true;
  flush();
  spdlog::info("policy reloaded: {} policies, generation {}", policy_->policies().policies.size(),
               policy_->generation());
  audit_->policyApplied(trigger, policy_->generation(), policy_->sha256(),
                        policy_->policies().policies.size());
  return {{"ok", true},
          {"policyGeneration", policy_->generation()},
          {"policySha256", policy_->sha256()}};
}

void Agent::flush() {
  if (!dirty_ || !fastPath_) {
    return;
  }
  syncCluster();
  auto state = std::make_unique<dataplane::ForwardingState>();
  state->version = ++publishes_;
  rules::IdentityList identities = registry_->identities().identities();
  addRemote(identities, *state);
  state->policy = policy_->snapshot(identities, identitiesChanged_);
  state->hostIps = config_.staticEndpoints.hostIps;
  registry_->fill(*state);
  if (offload_ && wire_) {
    // Every entry offloaded under the state before is void from this store on, before any
    // worker reads the new state: a flow the new one denies is cut at its next packet.
    state->offloadVersion =
        static_cast<uint32_t>(state->version) == 0 ? 1 : static_cast<uint32_t>(state->version);
    wire_->setOffloadVersion(state->offloadVersion);
  }
  fastPath_->publish(std::move(state));
  if (!attachEvents_.empty()) {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const uint64_t nowNs = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
    const auto record = [&](std::deque<double>& into, uint64_t sinceNs) {
      if (sinceNs != 0 && nowNs > sinceNs) {
        into.push_back(double(nowNs - sinceNs) / 1e6);
      }
      while (into.size() > 8192) {
        into.pop_front();
      }
    };
    for (const auto& pending : attachEvents_) {
      record(attachLatenciesMs_, pending.eventNs);
      record(agentLatenciesMs_, pending.pushedNs);
    }
    attachEvents_.clear();
  }
  if (identitiesChanged_) {
    if (std::string error; !registry_->identities().save(&error)) {
      spdlog::error("identities: {} (numbering may change at the next start)", error);
    }
  }
  dirty_ = false;
  identitiesChanged_ = false;
  if (journalDirty_) {
    saveJournal(true);
  }
}

void Agent::saveJournal(bool running) {
  journalDirty_ = false;
  if (journalPath_.empty()) {
    return;
  }
  AgentJournal journal;
  journal.running = running;
  journal.pid = getpid();
  journal.instance = config_.instance;
  if (wire_) {
    journal.plugged = wire_->plugged();
    journal.uplinks = wire_->uplinks();
  }
  journal.protectedBridges.assign(protected_.begin(), protected_.end());
  for (const auto& endpoint : registry_->endpoints()) {
    for (const auto& attachment : endpoint.attachments) {
      if (endpoint.source == "api" && !attachment.request.is_null()) {
        journal.apiEndpoints.push_back(attachment.request);
      }
    }
  }
  if (std::string error; !journal.save(journalPath_, &error)) {
    spdlog::error("state: {}", error);
  }
}

bool Agent::start(std::string* error) {
  links_ = HostLinks::open(error);
  if (!links_) {
    return false;
  }
  linkWatcher_ = LinkWatcher::open(error);
  if (!linkWatcher_) {
    return false;
  }
  const auto target = [&](const std::string& spec, const char* messageId, unsigned severity) {
    LogTarget out{spec, config_.logMaxBytes, config_.logFiles, config_.syslogFacility};
    out.messageId = messageId;
    out.severity = severity;
    return out;
  };
  const EndpointLookup lookup = [this](uint32_t slot) { return registry_->infoForSlot(slot); };
  std::string logError;
  violationLog_ =
      ViolationLog::open(target(config_.violationLog, "violation", 4), lookup, *protocols_,
                         &logError);  // 4: warning
  if (!violationLog_) {
    *error = "violation log: " + logError;
    return false;
  }
  violationLog_->setExplainer(
      [this](const dataplane::ViolationEvent& event) { return explain(event); });
  const RemoteLookup remote = [this](const rules::IpAddress& ip) { return remoteInfo(ip); };
  violationLog_->setRemoteLookup(remote);
  audit_ = AuditLog::open(target(config_.auditLog, "audit", 5), &logError);  // 5: notice
  if (!audit_) {
    *error = "audit log: " + logError;
    return false;
  }
  if (!config_.flowLog.empty()) {
    flowLog_ = ViolationLog::open(target(config_.flowLog, "flow", 6), lookup, *protocols_,
                                  &logError);  // 6: informational
    if (!flowLog_) {
      *error = "flow log: " + logError;
      return false;
    }
    flowLog_->setRemoteLookup(remote);
  }

  openLearning();
  journalPath_ = config_.stateDirectory + "/agent.json";
  std::string warning;
  const AgentJournal previous = AgentJournal::load(journalPath_, &warning);
  if (!warning.empty()) {
    spdlog::warn("state: {}", warning);
  }
  if (previous.running && previous.pid != getpid() && processRuns(previous.pid) &&
      previous.instance == config_.instance) {
    *error = "an agent of instance '" + config_.instance + "' (pid " +
             std::to_string(previous.pid) + ") runs with state directory " +
             config_.stateDirectory + "; give this one its own 'instance' and 'stateDirectory'";
    journalPath_.clear();  // its journal is not ours to touch
    return false;
  }
  if (previous.running) {
    spdlog::warn(
        "the previous agent did not stop cleanly (crash or SIGKILL): its containers "
        "stayed cut off; taking them over");
  }
  tookOverQuarantine_ = wire::Quarantine::exists(names_.quarantineTable());

  // The bridges to hold shut from the first instant: those named in the configuration and those
  // an earlier agent protected (their containers are still quarantined, and stay so).
  for (const auto& bridge : config_.protectBridges) {
    protected_.insert(bridge);
  }
  for (const auto& bridge : previous.protectedBridges) {
    if (links_->isBridge(bridge)) {
      protected_.insert(bridge);
    }
  }
  // Veths on every other bridge go through the quarantine from its first instant.
  std::vector<int> released;
  std::string listError;
  const auto links = links_->list(&listError);
  for (const auto& link : links) {
    if (link.kind != "veth" || link.masterIndex == 0 || names_.owns(link.name)) {
      continue;
    }
    if (!holdsBridge(links_->nameOf(link.masterIndex), monotonicMs())) {
      released.push_back(link.ifindex);
    }
  }
  wire_ = Wire::open(names_, *links_, previous.plugged, previous.uplinks, released, error,
                     config_.workers);
  if (!wire_) {
    return false;
  }
  fastPath_ = std::make_unique<FastPath>();
  std::vector<std::string> trunkPorts;
  std::vector<std::unique_ptr<dataplane::Doorbell>> doorbells;
  for (unsigned worker = 0; worker < config_.workers; ++worker) {
    trunkPorts.push_back(names_.trunkPort(worker));
    std::string bellError;
    doorbells.push_back(wire_->doorbell(worker, &bellError));
    if (!doorbells.back()) {
      spdlog::warn("wire: {}; idle worker {} polls every {} us instead of sleeping until traffic",
                   bellError, worker, dataplane::WorkerConfig{}.idleSleepMicros);
    }
  }
  if (config_.offload == Offload::Established) {
    std::string offloadError;
    offload_ = wire_->offload(&offloadError);
    if (!offload_) {
      spdlog::warn("wire: {}; every packet goes through the fast path (offload: none)",
                   offloadError);
    }
    wire_->keepOffloading(OffloadKeepAliveSeconds);
  }
  if (!fastPath_->start(config_, trunkPorts, std::move(doorbells), error, offload_.get())) {
    return false;
  }
  spdlog::info("wire: {} trunk(s) {} / {}..., quarantine table bridge {}, pins {}", config_.workers,
               names_.trunkKernelEnd(), names_.trunkPort(), names_.quarantineTable(),
               names_.pinDirectory());

  // Segment 0: interfaces on no bridge, and the configured uplink (the world) behind them.
  auto& unbridged = registry_->segment("");
  if (!config_.uplink.empty()) {
    const auto tag = registry_->tags().allocate();
    int ifindex = 0;
    if (!tag || !wire_->plug(config_.uplink, *tag, &ifindex, error)) {
      *error = "uplink " + config_.uplink + ": " + *error;
      return false;
    }
    unbridged.uplinkInterface = config_.uplink;
    unbridged.uplinkIfindex = ifindex;
    unbridged.uplinkTag = *tag;
    spdlog::info("uplink {} carries tag {}", config_.uplink, *tag);
  }
  for (const auto& bridge : std::set<std::string>(protected_)) {
    std::string failure;
    if (!protectBridge(bridge, &failure)) {
      spdlog::error("bridge {}: {}", bridge, failure);
    }
  }

  const auto& statics = config_.staticEndpoints;
  for (size_t i = 0; i < statics.endpoints.size(); ++i) {
    const auto& endpoint = statics.endpoints[i];
    AttachSpec spec;
    spec.name = endpoint.name;
    spec.labels = endpointLabels(endpoint.name, endpoint.labels, "", {}, config_.namespaceLabel,
                                 config_.namespaces);
    spec.source = "config";
    spec.interface = statics.interfaces[i];
    spec.macs = endpoint.macs;
    spec.ips = endpoint.ips;
    if (const std::string failure = attach(spec); !failure.empty()) {
      *error = "static endpoint '" + endpoint.name + "': " + failure;
      return false;
    }
  }
  if (!config_.runtimeSocket.empty()) {
    runtime_ = std::make_unique<RuntimeLabels>(config_.runtimeSocket, 5);
  }
  recover(previous);
  reconcileLinks();
  flush();
  saveJournal(true);

  std::string apiError;
  api_ = api::ApiServer::open(config_.apiSocket, config_.apiSocketGroup, &apiError);
  if (!api_) {
    *error = "API socket: " + apiError;
    return false;
  }
  if (!openMetrics(error)) {
    return false;
  }
  if (config_.docker) {
    docker_ = std::make_unique<DockerWatcher>(config_.dockerSocket);
    docker_->start();
    if (dockerScope_.networks.empty()) {
      spdlog::info("docker: following every network of {}", config_.dockerSocket);
    } else {
      spdlog::info("docker: following networks {} of {}", fmt::join(dockerScope_.networks, ", "),
                   config_.dockerSocket);
    }
  }
  return true;
}

void Agent::stop() {
  if (!registry_) {
    return;  // never started, or stopped already
  }
  docker_.reset();
  cluster_.reset();  // a clean stop takes this host out of the cluster at once
  api_.reset();
  metrics_.reset();
  if (fastPath_) {
    fastPath_->stop([this](const dataplane::ViolationEvent& event) { writeEvent(event); });
    fastPath_.reset();
  }
  if (wire_) {
    // A clean stop takes the agent out of the path entirely: the containers, still on their
    // bridges, talk as they would without it. A start that failed after a crash leaves the
    // crashed agent's quarantine in place (fail closed) unless failOpen says otherwise.
    const bool keep = failedStart_ && tookOverQuarantine_ && !config_.failOpen;
    wire_->shutdown(keep);
    spdlog::info("wire: removed{}", keep ? "; the quarantine stays (fail closed)" : "");
  }
  saveJournal(false);
  saveEdges(true);
  wire_.reset();
  linkWatcher_.reset();
  violationLog_.reset();
  flowLog_.reset();
  audit_.reset();
  runtime_.reset();
  registry_.reset();
}

void Agent::drainViolations() {
  fastPath_->drainViolations([this](const dataplane::ViolationEvent& event) { writeEvent(event); });
}

std::optional<rules::Explanation> Agent::explain(const dataplane::ViolationEvent& event) const {
  const rules::PolicySnapshotPtr& snapshot = policy_->current();
  // Only the snapshot that judged the flow can say why; a reload since has other rules.
  if (event.kind != dataplane::ViolationKind::Policy || !snapshot ||
      snapshot->generation() != event.policyGeneration) {
    return std::nullopt;
  }
  rules::FlowQuery query;
  query.src = event.srcIdentity;
  query.dst = event.dstIdentity;
  query.srcIp = event.srcIp;
  query.dstIp = event.dstIp;
  query.ipProtocol = event.ipProtocol;
  query.dstPort = event.dstPort;
  if (event.classified) {
    query.app = event.classification.inspected;  // what the policy matched: what was proven
    // From shared memory: never trust the terminator to be there.
    query.host = std::string_view(
        event.classification.host.data(),
        strnlen(event.classification.host.data(), event.classification.host.size()));
  }
  return rules::explainDenial(*snapshot, query, event.deniedBy,
                              [this](uint16_t id) { return catalog_->name(id); });
}

void Agent::writeEvent(const dataplane::ViolationEvent& event) {
  if (event.kind == dataplane::ViolationKind::Judged) {
    observe(event);
    return;
  }
  ViolationLog* log =
      event.kind == dataplane::ViolationKind::FlowEnd ? flowLog_.get() : violationLog_.get();
  if (log != nullptr) {
    log->write(event);
  }
}

int Agent::release(const AgentConfig& config) {
  const std::string path = config.stateDirectory + "/agent.json";
  std::string warning;
  const AgentJournal journal = AgentJournal::load(path, &warning);
  if (!warning.empty()) {
    spdlog::warn("state: {}", warning);
  }
  if (journal.running && processRuns(journal.pid) && journal.pid != getpid()) {
    spdlog::critical("the agent (pid {}) still runs: stop it first", journal.pid);
    return 1;
  }
  std::string error;
  auto links = HostLinks::open(&error);
  if (!links) {
    spdlog::critical("{}", error);
    return 1;
  }
  const WireNames names{journal.instance.empty() ? config.instance : journal.instance};
  Wire::releaseAll(names, *links, journal.plugged, journal.uplinks);
  AgentJournal cleared = journal;
  cleared.running = false;
  cleared.plugged.clear();
  cleared.uplinks.clear();
  cleared.protectedBridges.clear();
  if (!cleared.save(path, &error)) {
    spdlog::warn("state: {}", error);
  }
  spdlog::info("released: instance {} has no trunk, filter, pin or quarantine left",
               names.instance);
  return 0;
}

void Agent::serve() {
  const auto handler = [this](const nlohmann::json& request) { return handle(request); };
  while (!stopRequested) {
    pollfd fds[7] = {{api_->fd(), POLLIN, 0},
                     {watcher_ ? watcher_->fd() : -1, POLLIN, 0},
                     {linkWatcher_->fd(), POLLIN, 0},
                     {docker_ ? docker_->fd() : -1, POLLIN, 0},
                     {runtime_ ? runtime_->fd() : -1, POLLIN, 0},
                     {metrics_ ? metrics_->fd() : -1, POLLIN, 0},
                     {cluster_ ? cluster_->fd() : -1, POLLIN, 0}};
    ::poll(fds, 7, 50);
    if (fds[6].revents & POLLIN) {
      applyCluster();
    }
    if (fds[4].revents & POLLIN) {
      for (const auto& answer : runtime_->take()) {
        applyRuntimeLabels(answer);
      }
    }
    if (fds[2].revents & POLLIN) {
      const LinkChanges changes = linkWatcher_->take();
      linksDirty_ =
          linksDirty_ || changes.changed || changes.overflowed || !changes.removed.empty();
    }
    if (fds[3].revents & POLLIN) {
      for (const auto& update : docker_->take()) {
        applyDocker(update);
      }
    }
    // Every turn, ready or not: the server also cuts off clients past their deadline.
    api_->serve(handler);
    if (metrics_) {
      metrics_->serve([this] { return metricsText(); });
    }
    // The endpoints this turn brought are enforced before anything slower runs: everything
    // they changed reaches the workers at once, one state and one grace period.
    flush();
    // A look at every link is a netlink dump that waits for the kernel's lock while a runtime
    // makes veths: at most every 100 ms. The quarantine holds new veths meanwhile.
    const uint64_t now = monotonicMs();
    if ((linksDirty_ && now >= lastLinksCheckMs_ + 100) ||
        (nextLinksCheckMs_ != 0 && now >= nextLinksCheckMs_)) {
      lastLinksCheckMs_ = now;
      reconcileLinks();
    }
    if (watcher_ && watcher_->poll(now)) {
      reloadPolicy("file-change");
    }
    if (reloadRequested.exchange(false)) {
      reloadPolicy("sighup");
      std::string reopenError;
      if (!violationLog_->reopen(&reopenError)) {
        spdlog::error("violation log: {}", reopenError);
      }
      if (flowLog_ && !flowLog_->reopen(&reopenError)) {
        spdlog::error("flow log: {}", reopenError);
      }
      if (!audit_->reopen(&reopenError)) {
        spdlog::error("audit log: {}", reopenError);
      }
    }
    flush();
    fastPath_->reclaim();
    drainViolations();
    if (offload_ && wire_) {
      wire_->keepOffloading(OffloadKeepAliveSeconds);
    }
    saveEdges(false);
  }
}

int Agent::run() {
  spdlog::set_level(spdlog::level::from_str(config_.logLevel));
  try {
    catalog_ = std::make_unique<dpi::NdpiProtocolCatalog>();
    protocols_ = std::make_unique<dpi::ProtocolReporter>(*catalog_);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  policy_ = std::make_unique<PolicyManager>(config_.policyPaths, *catalog_);
  std::vector<std::string> errors;
  if (!policy_->load(&errors)) {
    for (const auto& error : errors) {
      spdlog::critical("{}", error);
    }
    spdlog::critical("not starting: the policy is invalid");
    return 1;
  }
  std::string identityWarning;
  // Shared, the numbers are the cluster's: their cache is a file of its own, so that a host
  // joining a cluster never takes its local numbering for the cluster's.
  const bool shared = config_.kvstore.enabled();
  registry_ = std::make_unique<EndpointRegistry>(IdentityAllocator(
      config_.stateDirectory + (shared ? "/cluster-identities.json" : "/identities.json"),
      &identityWarning));
  registry_->identities().setShared(shared);
  if (!identityWarning.empty()) {
    spdlog::warn("{}", identityWarning);
  }
  if (std::string clusterError; shared && !openCluster(&clusterError)) {
    spdlog::critical("not starting: {}", clusterError);
    return 1;
  }
  installSignalHandlers();
  std::string error;
  if (!start(&error)) {
    spdlog::critical("cannot start: {}", error);
    failedStart_ = true;
    stop();
    return 1;
  }
  if (config_.watchPolicy) {
    std::string watchError;
    watcher_ = PolicyWatcher::open(config_.policyPaths, &watchError);
    if (!watcher_) {
      spdlog::warn("policy files are not watched ({}); reload with SIGHUP", watchError);
    }
  }
  spdlog::info("bulkheadd ready: {} endpoints, {} policies, generation {}, API on {}",
               registry_->endpoints().size(), policy_->policies().policies.size(),
               policy_->generation(), config_.apiSocket);
  audit_->policyApplied("start", policy_->generation(), policy_->sha256(),
                        policy_->policies().policies.size());
  serve();
  spdlog::info("stopping");
  stop();
  return 0;
}

}  // namespace bulkhead::controlplane
