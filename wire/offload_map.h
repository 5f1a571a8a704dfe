#pragma once

#include <cstdint>

#include "dataplane/flow_offload.h"

namespace bulkhead::wire {

// The workers' way into the patch panel's bh_offload map (patch_panel_maps.h): each call one
// bpf(2) on the map, safe from any thread. The map belongs to the panel: this lives no longer.
class OffloadMap final : public dataplane::FlowOffload {
 public:
  explicit OffloadMap(int mapFd) : fd_(mapFd) {}
  bool install(const dataplane::OffloadDirection& direction, uint32_t version) override;
  bool read(const dataplane::OffloadDirection& direction,
            dataplane::OffloadCounts* counts) override;
  bool take(const dataplane::OffloadDirection& direction,
            dataplane::OffloadCounts* counts) override;

  // Every entry that enters on, or leaves by, `tag` (an attachment going away): a later holder
  // of the tag must not inherit them. The number removed.
  static size_t removeTag(int mapFd, uint16_t tag);

 private:
  bool lookup(const dataplane::OffloadDirection& direction, dataplane::OffloadCounts* counts,
              bool remove);
  int fd_;
};

}  // namespace bulkhead::wire
