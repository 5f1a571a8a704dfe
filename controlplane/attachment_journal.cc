#include "controlplane/attachment_journal.h"

#include <fstream>
#include <sstream>

#include "controlplane/atomic_file.h"

namespace bulkhead::controlplane {

AttachmentJournal AttachmentJournal::load(const std::string& path, std::string* warning) {
  AttachmentJournal journal;
  std::ifstream in(path);
  if (!in) {
    return journal;
  }
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json parsed = nlohmann::json::parse(text.str(), nullptr, false);
  if (!parsed.is_object()) {
    *warning = path + " is not a JSON object; ignoring what it recorded";
    return journal;
  }
  try {
    journal.running = parsed.value("running", false);
    for (const auto& uplink : parsed.value("uplinks", nlohmann::json::array())) {
      journal.uplinks.push_back({uplink.at("interface").get<std::string>(),
                                 uplink.at("peer").get<std::string>(),
                                 uplink.at("bridge").get<std::string>()});
    }
    for (const auto& endpoint : parsed.value("endpoints", nlohmann::json::array())) {
      journal.endpoints.push_back({endpoint.at("name").get<std::string>(),
                                   endpoint.at("interface").get<std::string>(),
                                   endpoint.value("bridge", ""), endpoint.value("source", ""),
                                   endpoint.value("request", nlohmann::json())});
    }
  } catch (const nlohmann::json::exception& e) {
    *warning = path + ": " + e.what() + "; ignoring what it recorded";
    return AttachmentJournal{};
  }
  return journal;
}

bool AttachmentJournal::save(const std::string& path, std::string* error) const {
  nlohmann::json uplinksJson = nlohmann::json::array();
  for (const auto& uplink : uplinks) {
    uplinksJson.push_back(
        {{"interface", uplink.interface}, {"peer", uplink.peer}, {"bridge", uplink.bridge}});
  }
  nlohmann::json endpointsJson = nlohmann::json::array();
  for (const auto& endpoint : endpoints) {
    endpointsJson.push_back({{"name", endpoint.name},
                             {"interface", endpoint.interface},
                             {"bridge", endpoint.bridge},
                             {"source", endpoint.source},
                             {"request", endpoint.request}});
  }
  const nlohmann::json document = {
      {"version", 1}, {"running", running}, {"uplinks", uplinksJson}, {"endpoints", endpointsJson}};
  return writeFileAtomically(path, document.dump(2) + "\n", error);
}

}  // namespace bulkhead::controlplane
