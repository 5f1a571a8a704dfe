// bulkhead graph: the service map of the agent's flows (cli/service_map.h).
#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>

#include "cli/agent_call.h"
#include "cli/commands.h"
#include "cli/service_map.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int graphCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead graph [--format dot|svg|png|plain] [--output FILE] [--since DURATION] [--flows]\n"
      "               [--group-by LABEL]...\n"
      "The service map of what the agent observed (its learned edges), or of its flows");
  options.add_options()("format", po::value<std::string>()->default_value("dot"),
                        "dot (Graphviz source), svg, png or plain (rendered by Graphviz's dot)")(
      "output,o", po::value<std::string>(), "write it here (png needs it); default stdout")(
      "since", po::value<std::string>(),
      "only edges seen within this long (90s, 15m, 24h, 7d); default all the agent keeps")(
      "flows", "the flows tracked now and those that ended lately, not the learned edges")(
      "group-by", po::value<std::vector<std::string>>(),
      "label that names a workload (repeatable, first found wins; default app, "
      "app.kubernetes.io/name, k8s-app, com.docker.compose.service, "
      "io.kubernetes.container.name)");
  const auto parsed = parse(args, options, {}, out, err, "graph");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const std::string format = parsed.vm["format"].as<std::string>();
  if (format != "dot" && format != "svg" && format != "png" && format != "plain") {
    err << "bulkhead graph: --format must be dot, svg, png or plain\n";
    return ExitUsage;
  }
  const std::string output = parsed.vm.count("output") ? parsed.vm["output"].as<std::string>() : "";
  if (format == "png" && output.empty()) {
    err << "bulkhead graph: --format png needs --output FILE\n";
    return ExitUsage;
  }
  const auto status = call(parsed.vm, {{"command", "status"}}, err, "graph");
  if (status.is_null()) {
    return ExitUsage;
  }
  cli::EndpointLabels labels;
  bool fromFlows = parsed.vm.count("flows") > 0;
  if (!fromFlows && !status["learning"].value("enabled", false)) {
    err << "bulkhead graph: learning is off in the agent; drawing its flows instead\n";
    fromFlows = true;
  }
  nlohmann::json flows;
  if (fromFlows) {
    flows = call(parsed.vm, {{"command", "flows"}}, err, "graph");
  } else {
    nlohmann::json request = {{"command", "edges"}};
    if (parsed.vm.count("since")) {
      request["since"] = parsed.vm["since"].as<std::string>();
    }
    const auto edges = call(parsed.vm, request, err, "graph");
    if (!edges.is_null() && !edges.value("ok", false)) {
      return finish(edges, parsed.vm, out, err, "graph", "");
    }
    flows =
        edges.is_null() ? edges : nlohmann::json{{"flows", edgesAsFlows(edges["edges"], labels)}};
  }
  if (flows.is_null()) {
    return ExitUsage;
  }
  for (const auto& endpoint : status.value("endpoints", nlohmann::json::array())) {
    auto& into = labels[text::stringMember(endpoint, "name")];
    if (const auto* map = text::objectMember(endpoint, "labels")) {
      for (const auto& [key, value] : map->items()) {
        if (value.is_string()) {
          into[key] = value.get<std::string>();
        }
      }
    }
  }
  const std::string dot =
      parsed.vm.count("group-by")
          ? cli::serviceMapDot(flows["flows"], labels,
                               parsed.vm["group-by"].as<std::vector<std::string>>())
          : cli::serviceMapDot(flows["flows"], labels);
  if (format == "dot") {
    if (output.empty()) {
      out << dot;
      return ExitOk;
    }
    std::ofstream file(output);
    file << dot;
    if (!file.flush()) {
      err << "bulkhead graph: cannot write " << output << "\n";
      return ExitUsage;
    }
    return ExitOk;
  }
  out.flush();
  std::string error;
  if (!cli::renderGraph(dot, format, output, &error)) {
    err << "bulkhead graph: " << error << "\n";
    return ExitUsage;
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
