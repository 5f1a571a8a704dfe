#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulkhead::api {

// An endpoint as the API's "attach" command carries it: what `bulkhead endpoint attach` and
// bulkhead-cni send, and what the agent records to attach it again after a restart. One
// request is one interface; a container on several networks is several requests with the same
// name and container id, each adding an attachment to one endpoint.
struct EndpointRequest {
  std::string name;
  std::string interface;  // the host end of the container's veth
  std::map<std::string, std::string> labels;
  std::string image;                  // becomes bulkhead.io/image
  std::vector<std::string> networks;  // each becomes bulkhead.io/network.<name>: "true"
  std::vector<std::string> ips;       // the only source addresses accepted on the interface
  std::vector<std::string> macs;
  std::string bridge;  // the bridge the interface was put on, when the interface cannot tell
  std::string netns;   // the container's network namespace and its end of the veth
  std::string containerInterface;
  std::string containerId;  // the runtime's id: the agent may ask the runtime for its labels
};

// From the request's "endpoint" object: "" on success, else a sentence saying what is wrong.
// Types, sizes and formats are checked here, where the request enters the agent.
std::string parseEndpointRequest(const nlohmann::json& json, EndpointRequest& out);
nlohmann::json toJson(const EndpointRequest& request);

}  // namespace bulkhead::api
