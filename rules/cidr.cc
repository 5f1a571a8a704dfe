#include "rules/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace bulkhead::rules {

IpAddress IpAddress::v4(uint32_t hostOrder) {
  IpAddress address;
  address.family = 4;
  const uint32_t network = htonl(hostOrder);
  std::memcpy(address.bytes.data(), &network, 4);
  return address;
}

IpAddress IpAddress::fromBytes(uint8_t family, const uint8_t* data) {
  IpAddress address;
  address.family = family;
  std::memcpy(address.bytes.data(), data, family == 4 ? 4 : 16);
  return address;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string copy(text);
  IpAddress address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) {
    address.family = 4;
    return address;
  }
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) {
    address.family = 6;
    return address;
  }
  return std::nullopt;
}

std::string IpAddress::toString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buffer, sizeof(buffer));
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buffer, sizeof(buffer));
  }
  return buffer;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  const size_t slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) {
    *error = "'" + std::string(text) + "' is not an IPv4 or IPv6 address or prefix";
    return std::nullopt;
  }
  const int maxLength = address->family == 4 ? 32 : 128;
  int length = maxLength;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        length < 0 || length > maxLength) {
      *error = "prefix length in '" + std::string(text) + "' must be 0.." +
               std::to_string(maxLength);
      return std::nullopt;
    }
  }
  Cidr cidr;
  cidr.network_ = *address;
  cidr.prefixLength_ = length;
  // Host bits set below the prefix are a likely typo (10.0.0.1/8); normalise rather than reject,
  // the way `ip route` does, so the network printed back is the one that matches.
  for (int bit = length; bit < maxLength; ++bit) {
    cidr.network_.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return cidr;
}

bool Cidr::contains(const IpAddress& address) const {
  if (address.family != network_.family) {
    return false;
  }
  const int fullBytes = prefixLength_ / 8;
  if (std::memcmp(address.bytes.data(), network_.bytes.data(), fullBytes) != 0) {
    return false;
  }
  const int restBits = prefixLength_ % 8;
  if (restBits == 0) {
    return true;
  }
  const uint8_t mask = static_cast<uint8_t>(0xFFu << (8 - restBits));
  return (address.bytes[fullBytes] & mask) == (network_.bytes[fullBytes] & mask);
}

std::string Cidr::toString() const {
  return network_.toString() + "/" + std::to_string(prefixLength_);
}

std::string CidrSet::toString() const {
  std::string out = cidr.toString();
  for (size_t i = 0; i < except.size(); ++i) {
    out += (i == 0 ? " except " : ", ") + except[i].toString();
  }
  return out;
}

}  // namespace bulkhead::rules
