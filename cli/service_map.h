#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "learning/workload.h"

namespace bulkhead::cli {

// Endpoint name -> its labels, as `bulkhead status` lists them.
using EndpointLabels = std::map<std::string, std::map<std::string, std::string>>;

// The service map (bulkhead graph): workloads as nodes, grouped as learning::workloadOf groups
// them (by the first of `groupLabels` an endpoint has, else by its name), the entities world and
// host as nodes of their own; one edge per source, destination, L4 protocol, port, protocol and
// verdict, labelled with the protocol, the port and the number of flows, and styled by verdict:
// allowed solid, denied dashed red, passed in monitor mode dotted orange.
inline const std::vector<std::string>& DefaultGroupLabels = learning::WorkloadLabels;

// Graphviz DOT of `flows` (the agent's flow list: `bulkhead flows --json`; a flow with a
// "flows" member counts as that many). Every name and label is quoted and escaped: they come
// from containers.
std::string serviceMapDot(const nlohmann::json& flows, const EndpointLabels& labels,
                          const std::vector<std::string>& groupLabels = DefaultGroupLabels);

// The agent's observed edges (its `edges` answer) as flows serviceMapDot draws, one per edge and
// verdict with a "flows" count, their endpoints' labels added to `labels`.
nlohmann::json edgesAsFlows(const nlohmann::json& edges, EndpointLabels& labels);

// Runs Graphviz's `dot -T<format>` on `dot`, to `outputPath` (empty: standard output). False
// with *error when dot is missing or fails.
bool renderGraph(const std::string& dot, const std::string& format, const std::string& outputPath,
                 std::string* error);

}  // namespace bulkhead::cli
