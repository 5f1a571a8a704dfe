#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace bulkhead::cli {

// Exit codes shared by every subcommand (documented in docs/cli.md).
inline constexpr int ExitOk = 0;
inline constexpr int ExitInvalid = 1;  // invalid policy/endpoints, corrupt capture
inline constexpr int ExitUsage = 2;    // bad flags, unreadable or missing files

// Each takes the arguments after its subcommand name.
int policyCheckCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int protocolsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int simulateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int statusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int reloadCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int policyApplyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int policyDeleteCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int policyConvertCommand(const std::vector<std::string>& args, std::ostream& out,
                         std::ostream& err);
int suggestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int explainCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int graphCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int endpointCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int endpointsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int flowsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int identitiesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int policyShowCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int violationsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace bulkhead::cli
