#include "cli/agent_call.h"

#include <cstdlib>
#include <iostream>

#include "api/client.h"
#include "cli/commands.h"
#include "text/json_text.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

// So that an operator of an agent elsewhere need not repeat --socket.
std::string defaultSocket() {
  const char* fromEnvironment = std::getenv("BULKHEAD_SOCKET");
  return fromEnvironment != nullptr && *fromEnvironment != '\0' ? fromEnvironment
                                                                : "/run/bulkhead/api.sock";
}

Parsed parse(const std::vector<std::string>& args, po::options_description& options,
             const po::positional_options_description& positional, std::ostream& out,
             std::ostream& err, const std::string& name) {
  options.add_options()("help,h", "show this help")(
      "socket", po::value<std::string>()->default_value(defaultSocket()),
      "the agent's API socket ($BULKHEAD_SOCKET overrides the default)")(
      "json", "print the agent's answer as JSON");
  Parsed parsed;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(),
              parsed.vm);
    po::notify(parsed.vm);
  } catch (const po::error& e) {
    err << "bulkhead " << name << ": " << e.what() << "\n" << options;
    parsed.exitCode = ExitUsage;
    return parsed;
  }
  if (parsed.vm.count("help")) {
    out << options;
    parsed.exitCode = ExitOk;
  }
  return parsed;
}

nlohmann::json call(const po::variables_map& vm, const nlohmann::json& request, std::ostream& err,
                    const std::string& name) {
  std::string error;
  auto reply = api::callApi(vm["socket"].as<std::string>(), request, &error);
  if (reply.is_null()) {
    err << "bulkhead " << name << ": " << error << "\n";
  }
  return reply;
}

int finish(const nlohmann::json& reply, const po::variables_map& vm, std::ostream& out,
           std::ostream& err, const std::string& name, const std::string& done) {
  if (vm.count("json")) {
    out << text::dumpJson(reply) << "\n";
  }
  if (!reply.value("ok", false)) {
    err << "bulkhead " << name << ": " << reply.value("error", std::string("failed")) << "\n";
    for (const auto& line : reply.value("errors", nlohmann::json::array())) {
      err << line.get<std::string>() << "\n";
    }
    return ExitInvalid;
  }
  if (!vm.count("json")) {
    out << done << "\n";
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
