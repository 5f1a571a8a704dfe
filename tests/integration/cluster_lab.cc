#include "tests/integration/cluster_lab.h"

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "tests/integration/host_tools.h"

namespace bulkhead::testing {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) {
    throw std::runtime_error(what);
  }
}

}  // namespace

ClusterLab::ClusterLab(int etcdMembers, const std::string& policy) {
  etcd_ = std::make_unique<EtcdCluster>(etcdDir_, etcdMembers);
  require(etcd_->ready(), "etcd did not come up: " + etcd_->log(0));
  labA_ = std::make_unique<Lab>();
  labB_ = std::make_unique<Lab>();
  fabric_ = &labA_->addHost("fabric", "10.213.1.1/24");  // its veth is host A's uplink
  web_ = &labA_->addHost("web", "10.213.1.11/24");
  db_ = &labA_->addHost("db", "10.213.1.13/24");
  api_ = &labB_->addHost("api", "10.213.2.12/24");
  // The fabric's leg toward host B: host B's uplink. It goes with the fabric's namespace.
  fabricB_ = labB_->prefix() + "f";
  const std::string ip = findOnPath("ip");
  for (const auto& command :
       std::vector<std::vector<std::string>>{{ip, "link", "add", fabricB_, "type", "veth", "peer",
                                              "name", "eth1", "netns", fabric_->netns},
                                             {ip, "link", "set", fabricB_, "up"}}) {
    const auto result = runCommand(command, 10);
    require(result.exitCode == 0, command[1] + " " + command[2] + ": " + result.err);
  }
  runCommand({findOnPath("ethtool"), "-K", fabricB_, "tx", "off", "rx", "off", "tso", "off", "gso",
              "off", "gro", "off", "txvlan", "off"},
             10);
  for (const auto& command :
       std::vector<std::vector<std::string>>{{"ip", "addr", "add", "10.213.2.1/24", "dev", "eth1"},
                                             {"ip", "link", "set", "eth1", "up"},
                                             {"ethtool", "-K", "eth1", "tx", "off", "rx", "off",
                                              "tso", "off", "gso", "off", "gro", "off"},
                                             {"sysctl", "-qw", "net.ipv4.ip_forward=1"}}) {
    const auto result = labA_->exec(*fabric_, command);
    require(result.exitCode == 0 || command[0] == "ethtool", "fabric: " + result.err);
  }
  // A route to the other host's subnet only, not a default one: nothing else (a resolver's
  // query, say) is sent anywhere.
  for (const auto& [host, gateway] : {std::pair<Host*, const char*>{web_, "10.213.1.1"},
                                      {db_, "10.213.1.1"},
                                      {api_, "10.213.2.1"}}) {
    Lab& lab = host == api_ ? *labB_ : *labA_;
    const char* other = host == api_ ? "10.213.1.0/24" : "10.213.2.0/24";
    const auto result = lab.exec(*host, {"ip", "route", "add", other, "via", gateway});
    require(result.exitCode == 0, "route: " + result.err);
  }
  agentA_ = std::make_unique<LiveAgent>(*labA_);
  agentB_ = std::make_unique<LiveAgent>(*labB_);
  std::string why;
  require(agentA_->start(policy, {{web_, {{"app", "web"}}}, {db_, {{"app", "db"}}}}, &why,
                         config("host-a", "10.213.1.0/24", fabric_->hostIfname)),
          "agent A: " + why);
  require(agentB_->start(policy, {{api_, {{"app", "api"}}}}, &why,
                         config("host-b", "10.213.2.0/24", fabricB_)),
          "agent B: " + why);
  require(believes(*agentA_, 1), "host A does not believe api: " + kvstore(*agentA_).dump());
  require(believes(*agentB_, 2), "host B does not believe web and db: " + kvstore(*agentB_).dump());
  auto& server = labB_->spawn(
      api_,
      {"/usr/bin/python3", "-m", "http.server", "8080", "--bind", api_->ip, "--directory", "/tmp"},
      "api-http.log");
  require(waitFor(
              [&] {
                return labB_
                           ->exec(*api_,
                                  {"/usr/bin/python3", "-c",
                                   "import socket; socket.create_connection(('" + api_->ip +
                                       "', 8080), 1)"},
                                  5)
                           .exitCode == 0;
              },
              10),
          "api's server did not come up: " + server.log());
}

ClusterLab::~ClusterLab() {
  stopAgents();
  labA_.reset();
  labB_.reset();
  etcd_.reset();
}

std::pair<std::optional<int>, std::optional<int>> ClusterLab::stopAgents() {
  std::pair<std::optional<int>, std::optional<int>> codes;
  if (agentA_) {
    codes.first = agentA_->stop();
    agentA_.reset();
  }
  if (agentB_) {
    codes.second = agentB_->stop();
    agentB_.reset();
  }
  return codes;
}

void ClusterLab::killAgentA() {
  if (agentA_) {
    agentA_->kill();
    agentA_.reset();
  }
}

std::string ClusterLab::config(const std::string& host, const std::string& subnet,
                               const std::string& uplink) const {
  std::string endpoints;
  for (const auto& url : etcd_->clientUrls()) {
    endpoints += (endpoints.empty() ? "" : ", ") + url;
  }
  return "uplink: " + uplink + "\nmetricsAddress: off\nkvstore:\n  endpoints: [" + endpoints +
         "]\n  host: " + host + "\n  subnets: [" + subnet +
         "]\n  leaseSeconds: 5\n  timeoutSeconds: 1\n";
}

nlohmann::json ClusterLab::kvstore(const LiveAgent& agent) {
  const auto status = agent.cli({"status", "--json"});
  const auto parsed = nlohmann::json::parse(status.out, nullptr, false);
  return status.exitCode == 0 && parsed.is_object() ? parsed["kvstore"] : nlohmann::json();
}

bool ClusterLab::believes(const LiveAgent& agent, size_t remoteEndpoints, int seconds) {
  return waitFor(
      [&] {
        const nlohmann::json state = kvstore(agent);
        return state.is_object() && state["remoteEndpoints"] == remoteEndpoints;
      },
      seconds);
}

int ClusterLab::identityOf(const LiveAgent& agent, const std::string& name) {
  const auto endpoints =
      nlohmann::json::parse(agent.cli({"endpoints", "--json"}).out, nullptr, false);
  if (endpoints.is_array()) {
    for (const auto& endpoint : endpoints) {
      if (endpoint["name"] == name) {
        return endpoint["identity"].get<int>();
      }
    }
  }
  return -1;
}

int ClusterLab::toApi(const Host& from, int timeoutSeconds) {
  const auto result =
      labA_->exec(from,
                  {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                   std::to_string(timeoutSeconds), "http://" + api_->ip + ":8080/"},
                  timeoutSeconds + 5);
  return std::atoi(result.out.c_str());
}

}  // namespace bulkhead::testing
