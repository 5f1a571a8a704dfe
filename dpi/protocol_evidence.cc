#include "dpi/protocol_evidence.h"

#include <algorithm>
#include <array>

#include "dpi/ndpi.h"

namespace bulkhead::dpi {
namespace {

constexpr auto Any = Transport::Any;
constexpr auto Tcp = Transport::Tcp;
constexpr auto Udp = Transport::Udp;
constexpr auto ByPort = Evidence::DecidedByPort;
constexpr auto ByAddress = Evidence::DecidedByAddress;
constexpr auto Named = Evidence::NamedByPort;

// From nDPI 4.2's lib/protocols/*.c (file names in the comments). A protocol with several code
// paths is listed by its weakest: nDPI reports the same name whichever path fired.
constexpr std::array Rules = std::to_array<EvidenceRule>({
    {NDPI_PROTOCOL_MDNS, Any, Named, NDPI_PROTOCOL_DNS, "DNS sent to or from port 5353"},  // dns.c
    {NDPI_PROTOCOL_NTP, Udp, ByPort, 0, "UDP port 123 and 3 bits of one byte"},            // ntp.c
    // netbios.c: a plain DNS query sent to UDP 137 passes its name-service check.
    {NDPI_PROTOCOL_NETBIOS, Udp, ByPort, 0, "UDP port 137/138 and a DNS-like header"},
    {NDPI_PROTOCOL_SNMP, Udp, ByPort, 0, "UDP port 161/162, one byte and a length"},
    {NDPI_PROTOCOL_MAIL_POPS, Tcp, Named, NDPI_PROTOCOL_TLS, "TLS on TCP port 995"},  // tls.c
    {NDPI_PROTOCOL_COAP, Udp, ByPort, 0, "UDP port 5683 and a few bits"},
    {NDPI_PROTOCOL_VMWARE, Udp, ByPort, 0, "UDP port 902, a length and one byte"},
    {NDPI_PROTOCOL_MAIL_SMTPS, Tcp, Named, NDPI_PROTOCOL_TLS, "TLS on TCP port 465 or 587"},
    {NDPI_PROTOCOL_GNUTELLA, Tcp, ByPort, 0, "high ports, packet lengths and echoed bytes"},
    // bittorrent.c: loose uTP header checks over UDP; its TCP finds are labelled as from cache.
    {NDPI_PROTOCOL_BITTORRENT, Udp, ByPort, 0, "UDP high ports and a loose uTP header"},
    {NDPI_PROTOCOL_SKYPE_CALL, Udp, ByPort, 0, "a UDP heuristic of a few bits"},        // skype.c
    {NDPI_PROTOCOL_SMBV23, Tcp, ByPort, 0, "TCP port 445 and a 4-byte length prefix"},  // smb.c
    {NDPI_PROTOCOL_MINING, Any, ByPort, 0, "UDP 30303 / TCP 30300-30305 and one byte"},
    {NDPI_PROTOCOL_MODBUS, Tcp, ByPort, 0, "TCP port 502 and a length field"},
    {NDPI_PROTOCOL_XBOX, Udp, ByPort, 0, "UDP port 3074 and packet lengths"},
    {NDPI_PROTOCOL_MAIL_IMAPS, Tcp, Named, NDPI_PROTOCOL_TLS, "TLS on TCP port 993"},
    {NDPI_PROTOCOL_CPHA, Udp, ByPort, 0, "UDP port 8116 and 2 bytes"},
    {NDPI_PROTOCOL_ZATTOO, Udp, ByPort, 0, "UDP port 5003 and 2 bytes"},
    {NDPI_PROTOCOL_AYIYA, Udp, ByPort, 0, "UDP port 5072 and a length"},
    {NDPI_PROTOCOL_RTP, Udp, ByPort, 0, "UDP high ports and about one byte"},  // rtp.c
    {NDPI_PROTOCOL_RDP, Udp, ByPort, 0, "UDP port 3389 and repeated bytes"},   // rdp.c
    {NDPI_PROTOCOL_DHCPV6, Udp, ByPort, 0, "UDP ports 546/547 and one byte"},
    {NDPI_PROTOCOL_KERBEROS, Any, ByPort, 0, "port 88, a length and one byte"},
    {NDPI_PROTOCOL_SKYPE_TEAMS, Udp, ByPort, 0, "a UDP heuristic of a few bits"},  // skype.c
    {NDPI_PROTOCOL_RADIUS, Udp, ByPort, 0, "UDP port 1812/1813, a code byte and a length"},
    {NDPI_PROTOCOL_TEAMVIEWER, Any, ByAddress, 0,
     "TeamViewer's addresses, or port 5938 and 2 bytes"},
    {NDPI_PROTOCOL_GTP, Udp, ByPort, 0, "UDP port 2123/2152/3386 and a few bits"},  // gtp.c
    {NDPI_PROTOCOL_LLMNR, Any, Named, NDPI_PROTOCOL_DNS, "DNS sent to port 5355"},  // dns.c
    {NDPI_PROTOCOL_SPOTIFY, Tcp, ByAddress, 0, "Spotify's address ranges"},         // spotify.c
    {NDPI_PROTOCOL_H323, Any, ByPort, 0, "UDP port 1719 and a length, or 2 bytes on TCP"},
    {NDPI_PROTOCOL_CISCOVPN, Any, ByPort, 0, "ports 443/8008/10000 and up to 5 bytes"},
    {NDPI_PROTOCOL_ORACLE, Tcp, ByPort, 0, "TCP port 1521 and 3 bytes"},
    {NDPI_PROTOCOL_WHOIS_DAS, Tcp, ByPort, 0, "TCP port 43/4343 and a line ending"},
    {NDPI_PROTOCOL_FTP_DATA, Tcp, ByPort, 0, "TCP port 20 (any bytes), or a file's magic number"},
    {NDPI_PROTOCOL_TELEGRAM, Any, ByPort, 0, "TCP port 443/80/25 and one byte"},
    {NDPI_PROTOCOL_ZOOM, Any, ByPort, 0, "UDP port 8801 and a few bits, or an address cache"},
    {NDPI_PROTOCOL_EAQ, Udp, ByPort, 0, "UDP port 6000 and packet lengths"},
    {NDPI_PROTOCOL_OOKLA, Any, ByAddress, 0, "port 8080 and an address cache, or 3 bytes"},
    {NDPI_PROTOCOL_KAKAOTALK_VOICE, Udp, ByAddress, 0, "KakaoTalk's address range"},
    {NDPI_PROTOCOL_HANGOUT_DUO, Any, ByAddress, 0, "Google's addresses and ports 19302-19309"},
    {NDPI_PROTOCOL_TINC, Udp, ByAddress, 0, "an address cache from an earlier TCP flow"},
    {NDPI_PROTOCOL_STARCRAFT, Udp, ByPort, 0, "UDP port 1119 and packet lengths"},
    {NDPI_PROTOCOL_TEREDO, Udp, ByPort, 0, "UDP port 3544 and a length"},
    {NDPI_PROTOCOL_GIT, Tcp, ByPort, 0, "TCP port 9418 and one hex digit"},  // git.c
    {NDPI_PROTOCOL_LISP, Udp, ByPort, 0, "UDP port 4341/4342 alone"},
    {NDPI_PROTOCOL_APPLE_PUSH, Tcp, ByAddress, 0, "Apple's 17.0.0.0/8 and port 5223/2197"},
    {NDPI_PROTOCOL_TARGUS_GETDATA, Any, ByPort, 0, "port 5001/5201 alone, from the SYN on"},
    {NDPI_PROTOCOL_CAPWAP, Udp, ByPort, 0, "UDP port 5246/5247 and a length"},
    {NDPI_PROTOCOL_S7COMM, Tcp, ByPort, 0, "TCP port 102 and 2 bytes"},
    {NDPI_PROTOCOL_MSTEAMS, Udp, ByAddress, 0, "an address cache of earlier Teams flows"},
    {NDPI_PROTOCOL_FACEBOOK_VOIP, Any, ByAddress, 0, "one Facebook address (under STUN)"},
    {NDPI_PROTOCOL_GTP_U, Udp, ByPort, 0, "UDP port 2152 and a few bits"},
    {NDPI_PROTOCOL_GTP_C, Udp, ByPort, 0, "UDP port 2123 and a length"},
    {NDPI_PROTOCOL_GTP_PRIME, Udp, ByPort, 0, "UDP port 3386 and a few bits"},
    {NDPI_PROTOCOL_ETHERNET_IP, Tcp, ByPort, 0, "TCP port 44818 and a length field"},
});

// The protocols of the evidence rules that nDPI 4.2's host_match table (ndpi_content_match.c.inc)
// also names from a host name.
constexpr std::array NamedByHost = std::to_array<uint16_t>({
    NDPI_PROTOCOL_BITTORRENT, NDPI_PROTOCOL_XBOX, NDPI_PROTOCOL_ZATTOO, NDPI_PROTOCOL_SKYPE_TEAMS,
    NDPI_PROTOCOL_TEAMVIEWER, NDPI_PROTOCOL_SPOTIFY, NDPI_PROTOCOL_TELEGRAM, NDPI_PROTOCOL_ZOOM,
    NDPI_PROTOCOL_EAQ, NDPI_PROTOCOL_OOKLA, NDPI_PROTOCOL_HANGOUT_DUO, NDPI_PROTOCOL_APPLE_PUSH,
    NDPI_PROTOCOL_MSTEAMS,
});

constexpr bool sortedById() {
  for (size_t i = 1; i < Rules.size(); ++i) {
    if (Rules[i - 1].protocol > Rules[i].protocol ||
        (Rules[i - 1].protocol == Rules[i].protocol &&
         Rules[i - 1].transport >= Rules[i].transport)) {
      return false;
    }
  }
  return true;
}
static_assert(sortedById(), "keep the rules in nDPI id order: evidenceFor searches them");

bool applies(Transport transport, uint8_t ipProtocol) {
  switch (transport) {
    case Transport::Any:
      return true;
    case Transport::Tcp:
      return ipProtocol == 0 || ipProtocol == IPPROTO_TCP;
    case Transport::Udp:
      return ipProtocol == 0 || ipProtocol == IPPROTO_UDP;
  }
  return true;
}

// Masters whose app part nDPI takes from a name in the flow: HTTP Host, TLS/DTLS/QUIC SNI (or
// the server's certificate), a DNS query, an SMTP EHLO.
bool carriesName(uint16_t master) {
  switch (master) {
    case NDPI_PROTOCOL_HTTP:
    case NDPI_PROTOCOL_HTTP_PROXY:
    case NDPI_PROTOCOL_HTTP_CONNECT:
    case NDPI_PROTOCOL_TLS:
    case NDPI_PROTOCOL_DTLS:
    case NDPI_PROTOCOL_QUIC:
    case NDPI_PROTOCOL_DNS:
    case NDPI_PROTOCOL_MAIL_SMTP:
      return true;
    default:
      return false;
  }
}

// A protocol as the policy sees it when its own dissector named it: 0 when nothing proves it.
uint16_t judged(uint16_t protocol, uint8_t ipProtocol) {
  uint16_t alias = 0;
  switch (evidenceFor(protocol, ipProtocol, &alias)) {
    case Evidence::Payload:
      return protocol;
    case Evidence::NamedByPort:
      return alias;
    case Evidence::DecidedByPort:
    case Evidence::DecidedByAddress:
      return 0;
  }
  return 0;
}

rules::AppProtocol judgedPair(const rules::AppProtocol& found, Confidence confidence,
                              uint8_t ipProtocol) {
  uint16_t master = found.master;
  uint16_t app = found.app;
  if (master == app) {
    master = 0;
  }
  if (app == 0) {
    std::swap(master, app);
  }
  if (app == 0) {
    return {};
  }
  if (confidence == Confidence::DpiCache) {
    // Only a master this flow's own bytes proved survives its cached app (TLS.<cached>).
    return master != 0 ? rules::AppProtocol{0, judged(master, ipProtocol)} : rules::AppProtocol{};
  }
  if (confidence != Confidence::Dpi) {
    return {};
  }
  if (master == 0) {
    return {0, judged(app, ipProtocol)};
  }
  const uint16_t provenMaster = judged(master, ipProtocol);
  if (provenMaster == 0) {
    return {};
  }
  if (carriesName(provenMaster)) {
    return provenMaster == app ? rules::AppProtocol{0, app} : rules::AppProtocol{provenMaster, app};
  }
  const uint16_t provenApp = judged(app, ipProtocol);
  if (provenApp == 0) {
    return {};
  }
  if (provenMaster == NDPI_PROTOCOL_STUN) {
    return {0, NDPI_PROTOCOL_STUN};
  }
  return provenMaster == provenApp ? rules::AppProtocol{0, provenApp}
                                   : rules::AppProtocol{provenMaster, provenApp};
}

}  // namespace

const char* toString(Evidence evidence) {
  switch (evidence) {
    case Evidence::Payload:
      return "payload";
    case Evidence::NamedByPort:
      return "named-by-port";
    case Evidence::DecidedByPort:
      return "decided-by-port";
    case Evidence::DecidedByAddress:
      return "decided-by-address";
  }
  return "payload";
}

std::span<const EvidenceRule> evidenceRules() { return Rules; }

bool namedByHost(uint16_t protocol) {
  return std::find(NamedByHost.begin(), NamedByHost.end(), protocol) != NamedByHost.end();
}

Evidence evidenceFor(uint16_t protocol, uint8_t ipProtocol, uint16_t* alias) {
  auto it =
      std::lower_bound(Rules.begin(), Rules.end(), protocol,
                       [](const EvidenceRule& rule, uint16_t id) { return rule.protocol < id; });
  Evidence weakest = Evidence::Payload;
  for (; it != Rules.end() && it->protocol == protocol; ++it) {
    if (!applies(it->transport, ipProtocol)) {
      continue;
    }
    if (it->evidence > weakest) {
      weakest = it->evidence;
    }
    if (it->evidence == Evidence::NamedByPort && alias != nullptr) {
      *alias = it->alias;
    }
  }
  return weakest;
}

rules::AppProtocol inspectedProtocol(const rules::AppProtocol& found, Confidence confidence,
                                     bool malformed, uint8_t ipProtocol) {
  const rules::AppProtocol judged = judgedPair(found, confidence, ipProtocol);
  // dns.c names a flow DNS once a 12-byte header passes a loose check on a DNS port, and only
  // flags the rest as malformed: random bytes sent to TCP 53 come out as DNS that way. The risk
  // is the flow's, set by whichever dissector tried, so it only disqualifies DNS itself.
  if (malformed && (judged.app == NDPI_PROTOCOL_DNS || judged.master == NDPI_PROTOCOL_DNS)) {
    return {};
  }
  return judged;
}

}  // namespace bulkhead::dpi
