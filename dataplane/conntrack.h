#pragma once

#include <cstdint>

namespace bulkhead::dataplane {

// Connection-tracking states, coarse on purpose: enough to pick a timeout and to know that a
// reply has been seen (the flow is "established" and its return traffic is the same flow).
enum class ConnState : uint8_t {
  New,          // one direction seen (UDP, ICMP, other) or TCP first packet without SYN
  SynSent,      // TCP: SYN from the initiator
  SynReceived,  // TCP: SYN-ACK from the responder
  Established,  // traffic seen both ways (TCP: handshake done, or picked up mid-stream)
  Closing,      // TCP: a FIN seen
  Closed,       // TCP: RST, or FIN from both sides
};

const char* toString(ConnState state);

struct ConntrackTimeouts {
  uint32_t tcpHandshakeSeconds = 30;
  uint32_t tcpEstablishedSeconds = 3600;
  uint32_t tcpClosingSeconds = 30;
  uint32_t tcpClosedSeconds = 10;
  uint32_t udpSeconds = 60;
  uint32_t icmpSeconds = 30;
  uint32_t otherSeconds = 60;
};

struct TcpDirectionFlags {
  bool finFromInitiator = false;
  bool finFromResponder = false;
};

// Next state after a packet; `fromInitiator` is its direction, `tcpFlags` 0 for non-TCP.
ConnState advance(ConnState state, bool isTcp, bool fromInitiator, uint8_t tcpFlags,
                  TcpDirectionFlags& fins);

uint32_t timeoutSeconds(ConnState state, uint8_t ipProtocol, const ConntrackTimeouts& timeouts);

}  // namespace bulkhead::dataplane
