#include "wire/quarantine.h"

#include <nftables/libnftables.h>

#include <algorithm>

namespace bulkhead::wire {
namespace {

std::string elements(const std::vector<int>& ifindexes) {
  std::string out;
  for (const int ifindex : ifindexes) {
    out += (out.empty() ? "" : ", ") + std::to_string(ifindex);
  }
  return out;
}

nft_ctx* newContext() {
  nft_ctx* context = nft_ctx_new(NFT_CTX_DEFAULT);
  if (context != nullptr) {
    nft_ctx_buffer_output(context);
    nft_ctx_buffer_error(context);
  }
  return context;
}

bool runIn(nft_ctx* context, const std::string& commands, std::string* error) {
  if (nft_run_cmd_from_buffer(context, commands.c_str()) != 0) {
    std::string message = nft_ctx_get_error_buffer(context);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    *error = "nftables: " + (message.empty() ? std::string("the kernel refused") : message);
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<Quarantine> Quarantine::open(const std::string& table,
                                             const std::vector<int>& uplinks,
                                             const std::vector<int>& released, std::string* error) {
  nft_ctx* context = newContext();
  if (context == nullptr) {
    *error = "nftables: cannot create a context";
    return nullptr;
  }
  std::unique_ptr<Quarantine> quarantine(new Quarantine(context, table));
  const std::string t = "bridge " + table;
  // "add; delete; define" in one transaction: creates the table, or swaps a stale one for it
  // atomically.
  std::string commands =
      "add table " + t + "\ndelete table " + t + "\ntable " + t + " {\n" +
      "  set uplinks { type iface_index; }\n  set released { type iface_index; }\n";
  const char* fromVeth = "meta iifkind \"veth\" meta iif != @released meta iif != @uplinks drop";
  const char* toVeth = "meta oifkind \"veth\" meta oif != @released meta oif != @uplinks drop";
  commands += std::string("  chain forward {\n    type filter hook forward priority -200; ") +
              "policy accept;\n    " + fromVeth + "\n    " + toVeth + "\n  }\n" +
              "  chain input {\n    type filter hook input priority -200; policy accept;\n    " +
              fromVeth + "\n  }\n" +
              "  chain output {\n    type filter hook output priority -200; policy accept;\n    " +
              toVeth + "\n  }\n}\n";
  if (!uplinks.empty()) {
    commands += "add element " + t + " uplinks { " + elements(uplinks) + " }\n";
  }
  if (!released.empty()) {
    commands += "add element " + t + " released { " + elements(released) + " }\n";
  }
  if (!quarantine->run(commands, error)) {
    return nullptr;
  }
  return quarantine;
}

Quarantine::~Quarantine() {
  nft_ctx_free(context_);
}

bool Quarantine::run(const std::string& commands, std::string* error) {
  return runIn(context_, commands, error);
}

bool Quarantine::element(const char* verb, const char* set, int ifindex, std::string* error) {
  if (ifindex <= 0) {
    *error = "no such interface (ifindex " + std::to_string(ifindex) + ")";
    return false;
  }
  return run(std::string(verb) + " element bridge " + table_ + " " + set + " { " +
                 std::to_string(ifindex) + " }\n",
             error);
}

bool Quarantine::addUplink(int ifindex, std::string* error) {
  return element("add", "uplinks", ifindex, error);
}

// Deleting an absent element fails, and nft 1.0 has no "destroy" that would not; either way the
// port is not in the set afterwards.
void Quarantine::removeUplink(int ifindex) {
  std::string ignored;
  element("delete", "uplinks", ifindex, &ignored);
}

bool Quarantine::release(int ifindex, std::string* error) {
  return element("add", "released", ifindex, error);
}

void Quarantine::unrelease(int ifindex) {
  std::string ignored;
  element("delete", "released", ifindex, &ignored);
}

bool Quarantine::remove(std::string* error) {
  return run("delete table bridge " + table_ + "\n", error);
}

bool Quarantine::exists(const std::string& table) {
  nft_ctx* context = newContext();
  if (context == nullptr) {
    return false;
  }
  std::string ignored;
  const bool found = runIn(context, "list table bridge " + table + "\n", &ignored);
  nft_ctx_free(context);
  return found;
}

bool Quarantine::removeTable(const std::string& table, std::string* error) {
  if (!exists(table)) {
    return true;
  }
  nft_ctx* context = newContext();
  if (context == nullptr) {
    *error = "nftables: cannot create a context";
    return false;
  }
  const bool removed = runIn(context, "delete table bridge " + table + "\n", error);
  nft_ctx_free(context);
  return removed;
}

}  // namespace bulkhead::wire
