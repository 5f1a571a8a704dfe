#pragma once

#include <string>
#include <vector>

namespace bulkhead::testing {

// The policy most agent tests hold containers to: api (app: api) takes HTTP on 8080 from web
// (app: web) and nothing else; `extraIngress` is more of api's ingress rules (YAML list items,
// indented four spaces), `moreDocuments` more policies after a `---`.
inline std::string webToApiPolicy(const std::string& extraIngress = "",
                                  const std::string& moreDocuments = "") {
  return "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: api}\nspec:\n"
         "  endpointSelector: {matchLabels: {app: api}}\n  ingress:\n"
         "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
         "      toPorts: [{ports: [{port: 8080, protocol: TCP}], l7: {protocols: [HTTP]}}]\n" +
         extraIngress + (moreDocuments.empty() ? "" : "---\n" + moreDocuments);
}

// PID 1 of an api container: busybox httpd serving "hello-from-api" on each of `ports` (one the
// policy opens, others it does not), then a bounded sleep.
inline std::vector<std::string> apiServerCommand(const std::vector<int>& ports = {8080, 8081}) {
  std::string script = "mkdir -p /www && echo hello-from-api > /www/index.html";
  for (const int port : ports) {
    script += " && httpd -p " + std::to_string(port) + " -h /www";
  }
  return {"sh", "-c", script + " && exec sleep 3600"};
}

}  // namespace bulkhead::testing
