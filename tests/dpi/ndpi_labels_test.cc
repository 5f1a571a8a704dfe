// Runs every shared capture through the pipeline and compares each flow's protocol with the
// label nDPI's own reader (ndpiReader, same nDPI build) gives it, from NAME.flows.tsv.
// bulkhead keeps nDPI from guessing by port and address (dpi::Detector); ndpiReader lets it. So
// a label may differ only where nDPI's own guess for the flow (dpi::NdpiGuess, reported as
// `guessed_protocol`) supplies the difference: nothing nDPI says is lost, it is kept apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/simulation.h"
#include "dataplane/pcap_reader.h"
#include "tests/support/paths.h"

namespace bulkhead {
namespace {

namespace fs = std::filesystem;

struct Expected {
  std::string capture;
  std::string l4, srcIp, srcPort, dstIp, dstPort, master, app, host;
};

// ndpiReader and inet_ntop spell some IPv6 addresses differently ("b00c::25de" vs "b00c:0:25de").
std::string canonical(const std::string& ip) {
  const auto parsed = rules::IpAddress::parse(ip);
  return parsed ? parsed->toString() : ip;
}

std::string tupleKey(const std::string& l4, const std::string& ipA, const std::string& portA,
                     const std::string& ipB, const std::string& portB) {
  // Either side may come first: ndpiReader prints the side it saw first.
  std::string a = canonical(ipA) + "|" + portA;
  std::string b = canonical(ipB) + "|" + portB;
  if (b < a) {
    std::swap(a, b);
  }
  return l4 + "|" + a + "|" + b;
}

std::vector<Expected> readTsv(const fs::path& path) {
  std::vector<Expected> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream stream(line);
    std::string cell;
    while (std::getline(stream, cell, '\t')) {
      cells.push_back(cell);
    }
    cells.resize(9);
    rows.push_back({path.filename().string(), cells[0], cells[1], cells[2], cells[3], cells[4],
                    cells[5], cells[6], cells[7]});
  }
  return rows;
}

std::vector<cli::FlowRecord> simulate(const fs::path& capture) {
  std::string error;
  auto reader = dataplane::PcapReader::open(capture.string(), &error);
  EXPECT_TRUE(reader) << error;
  if (!reader) {
    return {};
  }
  cli::SimulationInput input;
  input.pipeline.flows.capacity = 4096;
  cli::Simulation simulation(std::move(input));
  return simulation.run(*reader, nullptr).flows;
}

TEST(NdpiLabels, MatchNdpiReaderOnSharedCaptures) {
  if (!testing::havePcaps()) {
    GTEST_SKIP() << "shared captures not found at " << testing::pcapDir()
                 << " (they sit beside the project, in ../shared/pcaps)";
  }
  size_t expectedFlows = 0;
  size_t matched = 0;
  size_t explainedByGuess = 0;
  std::vector<std::string> mismatches;
  std::vector<fs::path> tsvs;
  for (const auto& entry : fs::directory_iterator(testing::pcapDir())) {
    if (entry.path().string().ends_with(".flows.tsv")) {
      tsvs.push_back(entry.path());
    }
  }
  std::sort(tsvs.begin(), tsvs.end());
  ASSERT_FALSE(tsvs.empty());
  for (const auto& tsv : tsvs) {
    const fs::path capture = tsv.parent_path() / tsv.filename().string().substr(
                                                     0, tsv.filename().string().size() - 10);
    std::multimap<std::string, cli::FlowRecord> ours;
    for (auto& record : simulate(capture)) {
      const auto key = tupleKey(record.l4, record.srcIp, std::to_string(record.srcPort),
                                record.dstIp, std::to_string(record.dstPort));
      ours.emplace(key, std::move(record));
    }
    for (const auto& row : readTsv(tsv)) {
      ++expectedFlows;
      const auto key = tupleKey(row.l4, row.srcIp, row.srcPort, row.dstIp, row.dstPort);
      auto [begin, end] = ours.equal_range(key);
      auto same = std::find_if(begin, end, [&](const auto& entry) {
        return entry.second.masterProtocol == row.master && entry.second.appProtocol == row.app;
      });
      if (same != end) {
        ++matched;
        ours.erase(same);
        continue;
      }
      // ndpiReader's label is nDPI's guess for the flow, and every part bulkhead inspected is in
      // it ("DNS" of "DNS.Google" when the Google part came from an address).
      const std::string expected = row.master == row.app ? row.app : row.master + "." + row.app;
      auto guessed = std::find_if(begin, end, [&](const auto& entry) {
        const auto& record = entry.second;
        const bool partOf = record.appProtocol == "Unknown" || record.appProtocol == row.app ||
                            record.appProtocol == row.master;
        return record.guessed == expected && partOf;
      });
      if (guessed != end) {
        ++explainedByGuess;
        ours.erase(guessed);
        continue;
      }
      std::string got = begin == end ? "no such flow"
                                     : begin->second.masterProtocol + "." +
                                           begin->second.appProtocol + " (guessed: " +
                                           begin->second.guessed + ")";
      mismatches.push_back(row.capture + ": " + row.l4 + " " + row.srcIp + ":" + row.srcPort +
                           " <-> " + row.dstIp + ":" + row.dstPort + " expected " + row.master +
                           "." + row.app + ", got " + got);
      if (begin != end) {
        ours.erase(begin);
      }
    }
  }
  for (const auto& mismatch : mismatches) {
    std::cout << "mismatch: " << mismatch << "\n";
  }
  const double ratio =
      expectedFlows ? double(matched + explainedByGuess) / double(expectedFlows) : 0.0;
  std::cout << "nDPI labels matched: " << matched << "/" << expectedFlows << " flows as they are, "
            << explainedByGuess << " by nDPI's port or address guess; " << ratio * 100.0
            << "% in all\n";
  ASSERT_GT(expectedFlows, 0u);
  EXPECT_GE(ratio, 0.95);
  // The one flow left is ip_fragmented_garbage.pcap's, whose orphan fragments are dropped.
  EXPECT_LE(mismatches.size(), 1u);
}

}  // namespace
}  // namespace bulkhead
