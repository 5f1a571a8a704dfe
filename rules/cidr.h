#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::rules {

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes.
struct IpAddress {
  uint8_t family = 0;  // 0 (none), 4 or 6
  std::array<uint8_t, 16> bytes{};

  static IpAddress v4(uint32_t hostOrder);
  static IpAddress fromBytes(uint8_t family, const uint8_t* data);
  static std::optional<IpAddress> parse(std::string_view text);

  std::string toString() const;
  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
};

// A prefix such as 10.0.0.0/8 or 2001:db8::/32. A bare address is a full-length prefix.
class Cidr {
 public:
  static std::optional<Cidr> parse(std::string_view text, std::string* error);

  bool contains(const IpAddress& address) const;
  const IpAddress& network() const { return network_; }
  int prefixLength() const { return prefixLength_; }
  std::string toString() const;

 private:
  IpAddress network_;
  int prefixLength_ = 0;
};

// A prefix less some prefixes inside it (Cilium's CIDR set, Kubernetes' ipBlock): 10.0.0.0/8
// except 10.1.0.0/16. `toCIDR: [P]` is the set of P with no exceptions.
struct CidrSet {
  Cidr cidr;
  std::vector<Cidr> except;

  bool contains(const IpAddress& address) const {
    if (!cidr.contains(address)) {
      return false;
    }
    for (const auto& hole : except) {
      if (hole.contains(address)) {
        return false;
      }
    }
    return true;
  }
  std::string toString() const;
};

}  // namespace bulkhead::rules
