#pragma once

// What the rules tests that judge flows share: a policy document from its spec, compiled for
// web, api and db with the linked nDPI's catalogue, and a flow to ask it about.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead::policy_fixture {

using rules::Decision;
using rules::Direction;
using rules::FlowQuery;
using rules::IdentityId;

inline constexpr IdentityId Web = 256;
inline constexpr IdentityId Api = 257;
inline constexpr IdentityId Db = 258;
inline constexpr uint8_t Tcp = 6;
inline constexpr uint8_t Udp = 17;

inline const rules::ProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

inline std::string policy(std::string_view name, std::string_view spec) {
  return "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: " +
         std::string(name) + "}\nspec:\n" + std::string(spec) + "---\n";
}

inline rules::PolicySnapshotPtr compile(const std::string& yaml) {
  const auto loaded = rules::loadPolicyText(yaml, "p.yaml", catalog());
  for (const auto& error : loaded.errors) {
    ADD_FAILURE() << rules::format(error);
  }
  const rules::IdentityList identities = {
      {Web, {{"app", "web"}}}, {Api, {{"app", "api"}}}, {Db, {{"app", "db"}}}};
  return rules::compilePolicy(loaded.set, identities, catalog(), 1);
}

inline FlowQuery flow(IdentityId src, IdentityId dst, uint16_t port, uint8_t l4 = Tcp) {
  FlowQuery query;
  query.src = src;
  query.dst = dst;
  query.ipProtocol = l4;
  query.dstPort = port;
  return query;
}

inline FlowQuery classified(FlowQuery query, const char* protocol, std::string_view host = {}) {
  query.app = rules::AppProtocol{0, catalog().find(protocol).value_or(0)};
  query.host = host;
  return query;
}

}  // namespace bulkhead::policy_fixture
