#pragma once

// What every command that talks to a running bulkheadd shares: its flags (--socket, --json,
// --help), the request over the API socket, and how an answer becomes output and an exit code.
#include <boost/program_options.hpp>

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulkhead::cli {

// $BULKHEAD_SOCKET, else /run/bulkhead/api.sock.
std::string defaultSocket();

struct Parsed {
  boost::program_options::variables_map vm;
  int exitCode = -1;  // set when parsing already decided the outcome (--help, a bad flag)
};

// Adds --help, --socket and --json to `options` and parses `args` (the words after the command).
Parsed parse(const std::vector<std::string>& args,
             boost::program_options::options_description& options,
             const boost::program_options::positional_options_description& positional,
             std::ostream& out, std::ostream& err, const std::string& name);

// Sends the request; prints errors. Null when the agent could not be asked.
nlohmann::json call(const boost::program_options::variables_map& vm, const nlohmann::json& request,
                    std::ostream& err, const std::string& name);

// The answer as JSON (--json) or `done`; an answer that is not ok prints its error(s) and is
// ExitInvalid.
int finish(const nlohmann::json& reply, const boost::program_options::variables_map& vm,
           std::ostream& out, std::ostream& err, const std::string& name, const std::string& done);

}  // namespace bulkhead::cli
