#include "controlplane/agent_journal.h"

#include <fstream>
#include <sstream>

#include "controlplane/atomic_file.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {
namespace {

std::vector<std::string> strings(const nlohmann::json& parsed, const char* key) {
  std::vector<std::string> out;
  for (const auto& item : parsed.value(key, nlohmann::json::array())) {
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

AgentJournal AgentJournal::load(const std::string& path, std::string* warning) {
  AgentJournal journal;
  std::ifstream in(path);
  if (!in) {
    return journal;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string problem;
  const auto document = text::parseUntrusted(text.str(), text::StateFileLimits, &problem);
  if (!document || !document->is_object()) {
    *warning = path + " is not a JSON object" + (document ? "" : " (" + problem + ")") +
               "; ignoring what it recorded";
    return journal;
  }
  const nlohmann::json& parsed = *document;
  try {
    journal.running = parsed.value("running", false);
    journal.pid = parsed.value("pid", 0);
    journal.instance = parsed.value("instance", "");
    journal.plugged = strings(parsed, "plugged");
    journal.uplinks = strings(parsed, "uplinks");
    journal.protectedBridges = strings(parsed, "protectedBridges");
    for (const auto& request : parsed.value("apiEndpoints", nlohmann::json::array())) {
      if (!request.is_object()) {
        throw nlohmann::json::type_error::create(302, "an API endpoint is not an object", nullptr);
      }
      journal.apiEndpoints.push_back(request);
    }
  } catch (const nlohmann::json::exception& e) {
    *warning = path + ": " + e.what() + "; ignoring what it recorded";
    return AgentJournal{};
  }
  return journal;
}

bool AgentJournal::save(const std::string& path, std::string* error) const {
  const nlohmann::json document = {{"version", 2},
                                   {"running", running},
                                   {"pid", pid},
                                   {"instance", instance},
                                   {"plugged", plugged},
                                   {"uplinks", uplinks},
                                   {"protectedBridges", protectedBridges},
                                   {"apiEndpoints", apiEndpoints}};
  return writeFileAtomically(path, document.dump(2) + "\n", error);
}

}  // namespace bulkhead::controlplane
