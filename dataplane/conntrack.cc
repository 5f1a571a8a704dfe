#include "dataplane/conntrack.h"

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

const char* toString(ConnState state) {
  switch (state) {
    case ConnState::New:
      return "new";
    case ConnState::SynSent:
      return "syn-sent";
    case ConnState::SynReceived:
      return "syn-received";
    case ConnState::Established:
      return "established";
    case ConnState::Closing:
      return "closing";
    case ConnState::Closed:
      return "closed";
  }
  return "?";
}

ConnState advance(ConnState state, bool isTcp, bool fromInitiator, uint8_t tcpFlags,
                  TcpDirectionFlags& fins) {
  if (!isTcp) {
    return state == ConnState::New && fromInitiator ? ConnState::New : ConnState::Established;
  }
  if (tcpFlags & tcp_flags::Rst) {
    return ConnState::Closed;
  }
  if (tcpFlags & tcp_flags::Fin) {
    (fromInitiator ? fins.finFromInitiator : fins.finFromResponder) = true;
    return fins.finFromInitiator && fins.finFromResponder ? ConnState::Closed : ConnState::Closing;
  }
  switch (state) {
    case ConnState::New:
      if ((tcpFlags & (tcp_flags::Syn | tcp_flags::Ack)) == tcp_flags::Syn) {
        return ConnState::SynSent;
      }
      // First packet without SYN: a connection picked up mid-stream (capture started late, or
      // the agent restarted). Track it once the other side answers.
      return fromInitiator ? ConnState::New : ConnState::Established;
    case ConnState::SynSent:
      if (!fromInitiator && (tcpFlags & tcp_flags::Syn) && (tcpFlags & tcp_flags::Ack)) {
        return ConnState::SynReceived;
      }
      return state;
    case ConnState::SynReceived:
      return fromInitiator && (tcpFlags & tcp_flags::Ack) ? ConnState::Established : state;
    case ConnState::Established:
    case ConnState::Closing:
    case ConnState::Closed:
      return state;
  }
  return state;
}

uint32_t timeoutSeconds(ConnState state, uint8_t ipProtocol, const ConntrackTimeouts& timeouts) {
  switch (ipProtocol) {
    case ip_protocol::TCP:
      switch (state) {
        case ConnState::New:
        case ConnState::SynSent:
        case ConnState::SynReceived:
          return timeouts.tcpHandshakeSeconds;
        case ConnState::Established:
          return timeouts.tcpEstablishedSeconds;
        case ConnState::Closing:
          return timeouts.tcpClosingSeconds;
        case ConnState::Closed:
          return timeouts.tcpClosedSeconds;
      }
      return timeouts.tcpEstablishedSeconds;
    case ip_protocol::UDP:
      return timeouts.udpSeconds;
    case ip_protocol::ICMP:
    case ip_protocol::ICMPv6:
      return timeouts.icmpSeconds;
    default:
      return timeouts.otherSeconds;
  }
}

}  // namespace bulkhead::dataplane
