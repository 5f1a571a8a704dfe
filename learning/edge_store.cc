#include "learning/edge_store.h"

#include "dataplane/ip_protocol_name.h"
#include "text/time_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::learning {
namespace {

constexpr uint64_t StateVersion = 1;
// What one edge of a state file may hold: more than any endpoint the agent admits has, less than
// lets a damaged file cost the agent its memory.
constexpr size_t MaxLabels = 256;
constexpr size_t MaxText = 4096;

const char* kindName(EdgePeer::Kind kind) {
  switch (kind) {
    case EdgePeer::Kind::Endpoint:
      return "endpoint";
    case EdgePeer::Kind::Host:
      return "host";
    case EdgePeer::Kind::World:
      return "world";
  }
  return "world";
}

nlohmann::json peerJson(const EdgePeer& peer) {
  nlohmann::json out = {{"kind", kindName(peer.kind)}};
  if (peer.kind == EdgePeer::Kind::Endpoint) {
    out["labels"] = peer.labels;
  }
  if (!peer.address.empty()) {
    out["address"] = peer.address;
  }
  return out;
}

bool peerFromJson(const nlohmann::json* value, EdgePeer& peer, std::string* error) {
  if (value == nullptr || !value->is_object()) {
    *error = "a peer is not an object";
    return false;
  }
  const std::string kind = text::stringMember(*value, "kind");
  if (kind == "endpoint") {
    peer.kind = EdgePeer::Kind::Endpoint;
  } else if (kind == "host") {
    peer.kind = EdgePeer::Kind::Host;
  } else if (kind == "world") {
    peer.kind = EdgePeer::Kind::World;
  } else {
    *error = "a peer's kind is not endpoint, host or world";
    return false;
  }
  if (peer.kind == EdgePeer::Kind::Endpoint) {
    const nlohmann::json* labels = text::objectMember(*value, "labels");
    if (labels == nullptr || labels->size() > MaxLabels) {
      *error = "an endpoint peer has no labels object (or too many labels)";
      return false;
    }
    for (const auto& [key, label] : labels->items()) {
      if (!label.is_string() || key.size() > MaxText ||
          label.get_ref<const std::string&>().size() > MaxText) {
        *error = "a label is not a string of at most 4096 bytes";
        return false;
      }
      peer.labels.emplace(key, label.get<std::string>());
    }
  }
  peer.address = text::stringMember(*value, "address");
  if (peer.address.size() > MaxText) {
    *error = "an address is too long";
    return false;
  }
  return true;
}

}  // namespace

EdgeStore::EdgeStore(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void EdgeStore::touch(Entry& entry, const EdgeKey* key) {
  byAge_.erase(entry.age);
  entry.age = byAge_.insert(byAge_.end(), key);
}

void EdgeStore::insert(const EdgeKey& key, const EdgeStats& stats) {
  while (edges_.size() >= capacity_) {
    edges_.erase(*byAge_.front());
    byAge_.pop_front();
    ++evicted_;
  }
  auto [at, inserted] = edges_.try_emplace(key);
  at->second.stats = stats;
  at->second.age = byAge_.insert(byAge_.end(), &at->first);
}

EdgeKey edgeKeyOf(const EdgeKey& seen) {
  EdgeKey key = seen;
  for (char& c : key.host) {
    c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  while (!key.host.empty() && key.host.back() == '.') {
    key.host.pop_back();
  }
  if (key.ipProtocol == 1 || key.ipProtocol == 58) {
    key.port = 0;  // ICMP's "port" is its type and code: no rule names them
  }
  key.src.address.clear();  // a world source is any client
  if (!key.host.empty() || key.dst.kind != EdgePeer::Kind::World) {
    key.dst.address.clear();  // a name is what a rule allows the world by
  }
  if (key.src.kind != EdgePeer::Kind::Endpoint) {
    key.src.labels.clear();
  }
  if (key.dst.kind != EdgePeer::Kind::Endpoint) {
    key.dst.labels.clear();
  }
  if (key.protocol.empty()) {
    key.protocol = "Unknown";
  }
  return key;
}

void EdgeStore::record(const FlowObservation& flow) {
  ++flows_;
  const EdgeKey key = edgeKeyOf(flow.key);
  auto found = edges_.find(key);
  if (found == edges_.end()) {
    EdgeStats stats;
    stats.firstSeenNs = flow.timeNs;
    insert(key, stats);
    found = edges_.find(key);
  } else {
    touch(found->second, &found->first);
  }
  EdgeStats& stats = found->second.stats;
  ++stats.flows;
  if (flow.decision == rules::Decision::Deny) {
    ++(flow.enforced ? stats.denied : stats.monitored);
  } else {
    ++stats.allowed;
  }
  stats.packets += flow.packets;
  stats.bytes += flow.bytes;
  stats.firstSeenNs = std::min(stats.firstSeenNs, flow.timeNs);
  stats.lastSeenNs = std::max(stats.lastSeenNs, flow.timeNs);
  stats.lastRule = flow.rule;
  stats.srcAddress = flow.srcAddress;
  stats.dstAddress = flow.dstAddress;
}

std::vector<ObservedEdge> EdgeStore::edges(uint64_t sinceNs) const {
  std::vector<ObservedEdge> out;
  out.reserve(edges_.size());
  for (const EdgeKey* key : byAge_) {
    const EdgeStats& stats = edges_.find(*key)->second.stats;
    if (stats.lastSeenNs >= sinceNs) {
      out.push_back({*key, stats});
    }
  }
  return out;
}

void EdgeStore::clear() {
  edges_.clear();
  byAge_.clear();
}

nlohmann::json EdgeStore::toJson() const {
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& edge : this->edges()) {
    edges.push_back(learning::toJson(edge));
  }
  return {{"version", StateVersion}, {"edges", std::move(edges)}};
}

bool EdgeStore::load(const nlohmann::json& document, std::string* error) {
  clear();
  if (text::unsignedMember(document, "version") != StateVersion) {
    *error = "not a version 1 edge store";
    return false;
  }
  const nlohmann::json* edges = text::arrayMember(document, "edges");
  if (edges == nullptr) {
    *error = "no edges array";
    return false;
  }
  for (const auto& value : *edges) {
    auto edge = edgeFromJson(value, error);
    if (!edge) {
      clear();
      return false;
    }
    if (auto found = edges_.find(edge->key); found != edges_.end()) {
      *error = "an edge is listed twice";
      clear();
      return false;
    }
    insert(edge->key, edge->stats);
  }
  return true;
}

nlohmann::json toJson(const ObservedEdge& edge) {
  const EdgeKey& key = edge.key;
  const EdgeStats& stats = edge.stats;
  return {{"src", peerJson(key.src)},
          {"dst", peerJson(key.dst)},
          {"l4", dataplane::ipProtocolName(key.ipProtocol)},
          {"ipProtocol", key.ipProtocol},
          {"port", key.port},
          {"protocol", key.protocol},
          {"host", key.host},
          {"flows", stats.flows},
          {"allowed", stats.allowed},
          {"denied", stats.denied},
          {"monitored", stats.monitored},
          {"packets", stats.packets},
          {"bytes", stats.bytes},
          {"firstSeen", text::formatTimeNs(stats.firstSeenNs)},
          {"lastSeen", text::formatTimeNs(stats.lastSeenNs)},
          {"firstSeenNs", stats.firstSeenNs},
          {"lastSeenNs", stats.lastSeenNs},
          {"lastRule", stats.lastRule},
          {"srcAddress", stats.srcAddress},
          {"dstAddress", stats.dstAddress}};
}

std::optional<ObservedEdge> edgeFromJson(const nlohmann::json& value, std::string* error) {
  if (!value.is_object()) {
    *error = "an edge is not an object";
    return std::nullopt;
  }
  ObservedEdge edge;
  EdgeKey& key = edge.key;
  if (!peerFromJson(text::member(value, "src"), key.src, error) ||
      !peerFromJson(text::member(value, "dst"), key.dst, error)) {
    return std::nullopt;
  }
  const auto ipProtocol = text::unsignedMember(value, "ipProtocol");
  const auto port = text::unsignedMember(value, "port");
  if (!ipProtocol || *ipProtocol > 255 || !port || *port > 65535) {
    *error = "an edge has no valid ipProtocol and port";
    return std::nullopt;
  }
  key.ipProtocol = static_cast<uint8_t>(*ipProtocol);
  key.port = static_cast<uint16_t>(*port);
  key.protocol = text::stringMember(value, "protocol");
  key.host = text::stringMember(value, "host");
  if (key.protocol.empty() || key.protocol.size() > MaxText || key.host.size() > MaxText) {
    *error = "an edge has no protocol (or an oversized one or host)";
    return std::nullopt;
  }
  EdgeStats& stats = edge.stats;
  for (const auto& [name, into] : {std::pair<const char*, uint64_t*>{"flows", &stats.flows},
                                   {"allowed", &stats.allowed},
                                   {"denied", &stats.denied},
                                   {"monitored", &stats.monitored},
                                   {"packets", &stats.packets},
                                   {"bytes", &stats.bytes},
                                   {"firstSeenNs", &stats.firstSeenNs},
                                   {"lastSeenNs", &stats.lastSeenNs}}) {
    const auto number = text::unsignedMember(value, name);
    if (!number) {
      *error = std::string("an edge has no count ") + name;
      return std::nullopt;
    }
    *into = *number;
  }
  stats.lastRule = text::stringMember(value, "lastRule");
  stats.srcAddress = text::stringMember(value, "srcAddress");
  stats.dstAddress = text::stringMember(value, "dstAddress");
  if (stats.lastRule.size() > MaxText || stats.srcAddress.size() > MaxText ||
      stats.dstAddress.size() > MaxText) {
    *error = "an edge's rule or addresses are too long";
    return std::nullopt;
  }
  return edge;
}

}  // namespace bulkhead::learning
