#include <algorithm>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"

namespace {

using namespace bulkhead::cli;

using Handler = int (*)(const std::vector<std::string>&, std::ostream&, std::ostream&);

// Every command, in the order the usage lists them. A command with subcommands has one entry per
// subcommand, under the same `name`.
struct Command {
  std::string_view name;
  std::string_view sub;  // "" for a command without subcommands
  Handler handler;
};

// clang-format off
constexpr Command Commands[] = {
    {"policy", "check", policyCheckCommand},
    {"policy", "reload", reloadCommand},
    {"policy", "show", policyShowCommand},
    {"policy", "explain", explainCommand},
    {"policy", "suggest", suggestCommand},
    {"policy", "convert", policyConvertCommand},
    {"policy", "apply", policyApplyCommand},
    {"policy", "delete", policyDeleteCommand},
    {"protocols", "", protocolsCommand},
    {"simulate", "", simulateCommand},
    {"status", "", statusCommand},
    {"endpoints", "", endpointsCommand},
    {"identities", "", identitiesCommand},
    {"flows", "", flowsCommand},
    {"graph", "", graphCommand},
    {"violations", "", violationsCommand},
    {"endpoint", "attach", endpointCommand},
    {"endpoint", "detach", endpointCommand},
};
// clang-format on

constexpr const char* Usage = R"(bulkhead - operator's CLI for the bulkhead micro-segmentation agent

Usage:
  bulkhead policy check PATH...      validate policy files or directories
  bulkhead protocols [NAME...]        protocols a rule may name: how nDPI reaches each, which are proven
  bulkhead simulate --policy PATH --pcap FILE [--endpoints FILE] [--json] [--write-allowed OUT]
                   [--graph FILE] [--suggest DIR]
                                     run a capture through the pipeline and report each flow's verdict
  bulkhead status [--json]           the running agent: endpoints, counters, policy generation
  bulkhead policy reload             make the agent load its policy again (kept if invalid)
  bulkhead policy apply PATH...      store policy documents in the cluster (kvstore) for every host
  bulkhead policy delete NAME        remove a policy document from the cluster
  bulkhead policy show               the policy in force: generation, sha256, files, rules
  bulkhead policy explain --from ENDPOINT --to ENDPOINT --port P [--l4 UDP] [--protocol NAME] [--host NAME]
                         [--policy PATH [--endpoints FILE]]
                                     the verdict on such a flow, and why: the closest rule
  bulkhead policy convert PATH...    documents of any kind (NetworkPolicy) as bulkhead's own
  bulkhead policy suggest [--since 24h] [--endpoint NAME] [--output DIR] [--diff]
                                     an allow-list from the flows the agent observed (learning)
  bulkhead endpoints                 endpoints attached to the agent
  bulkhead identities                identities (label sets) and the endpoints that have them
  bulkhead flows                     the agent's tracked flows with protocol and verdict
  bulkhead graph [--format dot|svg|png|plain] [--output FILE] [--since 24h] [--flows]
                                     the service map of what the agent observed (Graphviz)
  bulkhead violations [--follow]     the violation log, readable (or --json lines)
  bulkhead endpoint attach NAME --interface IF [--label K=V]... [--ip A]... [--mac M]...
  bulkhead endpoint detach NAME      plug an endpoint's interface into / out of the agent
  bulkhead help [COMMAND [SUBCOMMAND]]
                                     this text, or the options of one command (also: COMMAND --help)
  bulkhead --version

Commands that talk to the agent take --socket PATH (default: $BULKHEAD_SOCKET, else
/run/bulkhead/api.sock).
Exit codes: 0 success, 1 invalid input (policy, endpoints, corrupt capture) or the agent refused,
2 usage or I/O error (including: the agent is not running).
)";

// Edits between two words (Levenshtein), for "did you mean".
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest of `candidates` to `word`, if it is near enough to be a typo; "" otherwise.
std::string nearest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t bestDistance = 3;  // at most two edits
  for (const auto candidate : candidates) {
    const size_t d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return std::string(best);
}

std::vector<std::string_view> commandNames() {
  std::vector<std::string_view> names;
  for (const auto& command : Commands) {
    if (std::find(names.begin(), names.end(), command.name) == names.end()) {
      names.push_back(command.name);
    }
  }
  names.push_back("help");
  return names;
}

std::vector<std::string_view> subcommandsOf(std::string_view name) {
  std::vector<std::string_view> subs;
  for (const auto& command : Commands) {
    if (command.name == name && !command.sub.empty()) {
      subs.push_back(command.sub);
    }
  }
  return subs;
}

int unknownCommand(const std::string& word) {
  std::cerr << "bulkhead: unknown command '" << word << "'";
  if (const auto guess = nearest(word, commandNames()); !guess.empty()) {
    std::cerr << "; did you mean '" << guess << "'?";
  }
  std::cerr << "\n\n" << Usage;
  return ExitUsage;
}

// `bulkhead NAME` without (or with an unknown) subcommand: what there is, and a guess.
int missingSubcommand(std::string_view name, const std::string* given) {
  const auto subs = subcommandsOf(name);
  if (given != nullptr) {
    std::cerr << "bulkhead " << name << ": unknown subcommand '" << *given << "'";
    if (const auto guess = nearest(*given, subs); !guess.empty()) {
      std::cerr << "; did you mean '" << name << " " << guess << "'?";
    }
    std::cerr << "\n";
  } else {
    std::cerr << "bulkhead " << name << ": a subcommand is needed\n";
  }
  std::cerr << "subcommands:";
  for (const auto sub : subs) {
    std::cerr << " " << sub;
  }
  std::cerr << "\n(bulkhead help " << name << " SUBCOMMAND for its options)\n";
  return ExitUsage;
}

int dispatch(std::vector<std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      (args[0] == "help" && args.size() == 1)) {
    (args.empty() ? std::cerr : std::cout) << Usage;
    return args.empty() ? ExitUsage : ExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "bulkhead " << BULKHEAD_VERSION << "\n";
    return ExitOk;
  }
  if (args[0] == "help") {
    // help COMMAND [SUBCOMMAND] is COMMAND [SUBCOMMAND] --help; a command with subcommands and
    // none named lists them.
    args.erase(args.begin());
    if (args.size() > 2) {
      std::cerr << "usage: bulkhead help [COMMAND [SUBCOMMAND]]\n";
      return ExitUsage;
    }
    if (!subcommandsOf(args[0]).empty() && args.size() == 1) {
      const auto subs = subcommandsOf(args[0]);
      std::cout << "bulkhead " << args[0] << " SUBCOMMAND, one of:";
      for (const auto sub : subs) {
        std::cout << " " << sub;
      }
      std::cout << "\n(bulkhead help " << args[0] << " SUBCOMMAND for its options)\n";
      return ExitOk;
    }
    args.push_back("--help");
  }
  const std::string& name = args[0];
  const auto subs = subcommandsOf(name);
  for (const auto& command : Commands) {
    if (command.name != name) {
      continue;
    }
    if (command.sub.empty()) {
      return command.handler({args.begin() + 1, args.end()}, std::cout, std::cerr);
    }
    if (args.size() >= 2 && args[1] == command.sub) {
      // `endpoint` takes its verb as its first argument; the others take what follows it.
      const auto first = name == "endpoint" ? args.begin() + 1 : args.begin() + 2;
      return command.handler({first, args.end()}, std::cout, std::cerr);
    }
  }
  if (!subs.empty()) {
    if (args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
      return dispatch({"help", name});
    }
    return missingSubcommand(name, args.size() >= 2 ? &args[1] : nullptr);
  }
  return unknownCommand(name);
}

}  // namespace

int main(int argc, char** argv) {
  // A command that meets an answer or a file it cannot read says so; it does not abort.
  try {
    return dispatch({argv + 1, argv + argc});
  } catch (const std::exception& e) {
    std::cerr << "bulkhead: " << e.what() << "\n";
    return bulkhead::cli::ExitUsage;
  }
}
