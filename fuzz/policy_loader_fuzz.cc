// The policy loader on arbitrary text: operators' files, and anything a mistake puts in them.
// Whatever loads must compile.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  static const dpi::NdpiProtocolCatalog catalog;
  const auto loaded = rules::loadPolicyText(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml", catalog);
  for (const auto& error : loaded.errors) {
    (void)rules::format(error);
  }
  if (loaded.ok()) {
    static const rules::IdentityList identities = {{256, {{"app", "web"}}},
                                                   {257, {{"app", "api"}, {"tier", "back"}}}};
    (void)rules::compilePolicy(loaded.set, identities, catalog, 1);
  }
  return 0;
}
