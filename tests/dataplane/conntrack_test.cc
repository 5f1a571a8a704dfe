#include "dataplane/conntrack.h"

#include <gtest/gtest.h>

#include "dataplane/packet_meta.h"

namespace bulkhead {
namespace {

using dataplane::advance;
using dataplane::ConnState;
using dataplane::ConntrackTimeouts;
using dataplane::TcpDirectionFlags;
using dataplane::timeoutSeconds;
namespace tcp_flags = dataplane::tcp_flags;
namespace ip_protocol = dataplane::ip_protocol;

constexpr bool Initiator = true;
constexpr bool Responder = false;
constexpr uint8_t Syn = tcp_flags::Syn;
constexpr uint8_t SynAck = tcp_flags::Syn | tcp_flags::Ack;
constexpr uint8_t Ack = tcp_flags::Ack;
constexpr uint8_t PshAck = tcp_flags::Psh | tcp_flags::Ack;
constexpr uint8_t FinAck = tcp_flags::Fin | tcp_flags::Ack;
constexpr uint8_t RstAck = tcp_flags::Rst | tcp_flags::Ack;

// Feeds TCP packets one by one, keeping the state and FIN flags as a flow entry would.
class TcpFlow {
 public:
  ConnState packet(bool fromInitiator, uint8_t flags) {
    state_ = advance(state_, true, fromInitiator, flags, fins_);
    return state_;
  }
  ConnState state() const { return state_; }
  const TcpDirectionFlags& fins() const { return fins_; }

 private:
  ConnState state_ = ConnState::New;
  TcpDirectionFlags fins_;
};

TEST(Conntrack, ThreeWayHandshakeReachesEstablished) {
  TcpFlow flow;
  EXPECT_EQ(flow.packet(Initiator, Syn), ConnState::SynSent);
  EXPECT_EQ(flow.packet(Responder, SynAck), ConnState::SynReceived);
  EXPECT_EQ(flow.packet(Initiator, Ack), ConnState::Established);
  EXPECT_EQ(flow.packet(Initiator, PshAck), ConnState::Established);
  EXPECT_EQ(flow.packet(Responder, PshAck), ConnState::Established);
}

TEST(Conntrack, HandshakeOutOfOrderDoesNotEstablish) {
  TcpFlow flow;
  EXPECT_EQ(flow.packet(Initiator, Syn), ConnState::SynSent);
  // A SYN-ACK from the initiator, or a plain ACK from the responder, is not the handshake.
  EXPECT_EQ(flow.packet(Initiator, SynAck), ConnState::SynSent);
  EXPECT_EQ(flow.packet(Responder, Ack), ConnState::SynSent);
  EXPECT_EQ(flow.packet(Initiator, Syn), ConnState::SynSent);  // retransmitted SYN
  EXPECT_EQ(flow.packet(Responder, SynAck), ConnState::SynReceived);
  // The responder's retransmitted SYN-ACK does not complete it either.
  EXPECT_EQ(flow.packet(Responder, SynAck), ConnState::SynReceived);
  EXPECT_EQ(flow.packet(Initiator, Ack), ConnState::Established);
}

TEST(Conntrack, FinFromBothSidesCloses) {
  TcpFlow flow;
  flow.packet(Initiator, Syn);
  flow.packet(Responder, SynAck);
  flow.packet(Initiator, Ack);
  EXPECT_EQ(flow.packet(Initiator, FinAck), ConnState::Closing);
  EXPECT_TRUE(flow.fins().finFromInitiator);
  EXPECT_FALSE(flow.fins().finFromResponder);
  EXPECT_EQ(flow.packet(Responder, Ack), ConnState::Closing);
  // A retransmitted FIN from the same side does not close.
  EXPECT_EQ(flow.packet(Initiator, FinAck), ConnState::Closing);
  EXPECT_EQ(flow.packet(Responder, FinAck), ConnState::Closed);
  EXPECT_TRUE(flow.fins().finFromResponder);
  EXPECT_EQ(flow.packet(Initiator, Ack), ConnState::Closed);
}

TEST(Conntrack, ResponderClosingFirst) {
  TcpFlow flow;
  flow.packet(Initiator, Syn);
  flow.packet(Responder, SynAck);
  flow.packet(Initiator, Ack);
  EXPECT_EQ(flow.packet(Responder, FinAck), ConnState::Closing);
  EXPECT_EQ(flow.packet(Initiator, FinAck), ConnState::Closed);
}

TEST(Conntrack, RstClosesFromAnyState) {
  {
    TcpFlow flow;
    flow.packet(Initiator, Syn);
    flow.packet(Responder, SynAck);
    flow.packet(Initiator, Ack);
    EXPECT_EQ(flow.packet(Responder, RstAck), ConnState::Closed);
  }
  {
    TcpFlow flow;  // connection refused
    flow.packet(Initiator, Syn);
    EXPECT_EQ(flow.packet(Responder, RstAck), ConnState::Closed);
  }
  {
    TcpFlow flow;
    flow.packet(Initiator, Syn);
    flow.packet(Responder, SynAck);
    flow.packet(Initiator, Ack);
    flow.packet(Initiator, FinAck);
    EXPECT_EQ(flow.packet(Initiator, tcp_flags::Rst), ConnState::Closed);
  }
}

TEST(Conntrack, MidStreamPickupEstablishesOnReply) {
  TcpFlow flow;
  // The first packet seen is data: no SYN, so the handshake happened before tracking began.
  EXPECT_EQ(flow.packet(Initiator, PshAck), ConnState::New);
  EXPECT_EQ(flow.packet(Initiator, Ack), ConnState::New);
  EXPECT_EQ(flow.packet(Responder, Ack), ConnState::Established);
  EXPECT_EQ(flow.packet(Initiator, PshAck), ConnState::Established);
}

TEST(Conntrack, MidStreamSynAckIsNotAHandshakeStart) {
  TcpFlow flow;
  EXPECT_EQ(flow.packet(Initiator, SynAck), ConnState::New);
  EXPECT_EQ(flow.packet(Responder, Ack), ConnState::Established);
}

TEST(Conntrack, UdpIsNewUntilAReply) {
  TcpDirectionFlags fins;
  ConnState state = ConnState::New;
  state = advance(state, false, Initiator, 0, fins);
  EXPECT_EQ(state, ConnState::New);
  state = advance(state, false, Initiator, 0, fins);
  EXPECT_EQ(state, ConnState::New);
  state = advance(state, false, Responder, 0, fins);
  EXPECT_EQ(state, ConnState::Established);
  state = advance(state, false, Initiator, 0, fins);
  EXPECT_EQ(state, ConnState::Established);
  EXPECT_FALSE(fins.finFromInitiator);
  EXPECT_FALSE(fins.finFromResponder);
}

TEST(Conntrack, NonTcpIgnoresTcpFlagBits) {
  // Flags are meaningless outside TCP: a UDP flow with stray bits never closes.
  TcpDirectionFlags fins;
  ConnState state = advance(ConnState::New, false, Initiator, tcp_flags::Rst, fins);
  EXPECT_EQ(state, ConnState::New);
  state = advance(state, false, Responder, tcp_flags::Fin, fins);
  EXPECT_EQ(state, ConnState::Established);
}

TEST(Conntrack, TimeoutsPerStateAndProtocol) {
  ConntrackTimeouts timeouts;
  timeouts.tcpHandshakeSeconds = 11;
  timeouts.tcpEstablishedSeconds = 22;
  timeouts.tcpClosingSeconds = 33;
  timeouts.tcpClosedSeconds = 44;
  timeouts.udpSeconds = 55;
  timeouts.icmpSeconds = 66;
  timeouts.otherSeconds = 77;
  const uint8_t tcp = ip_protocol::TCP;
  EXPECT_EQ(timeoutSeconds(ConnState::New, tcp, timeouts), 11u);
  EXPECT_EQ(timeoutSeconds(ConnState::SynSent, tcp, timeouts), 11u);
  EXPECT_EQ(timeoutSeconds(ConnState::SynReceived, tcp, timeouts), 11u);
  EXPECT_EQ(timeoutSeconds(ConnState::Established, tcp, timeouts), 22u);
  EXPECT_EQ(timeoutSeconds(ConnState::Closing, tcp, timeouts), 33u);
  EXPECT_EQ(timeoutSeconds(ConnState::Closed, tcp, timeouts), 44u);
  for (const ConnState state : {ConnState::New, ConnState::Established}) {
    EXPECT_EQ(timeoutSeconds(state, ip_protocol::UDP, timeouts), 55u);
    EXPECT_EQ(timeoutSeconds(state, ip_protocol::ICMP, timeouts), 66u);
    EXPECT_EQ(timeoutSeconds(state, ip_protocol::ICMPv6, timeouts), 66u);
    EXPECT_EQ(timeoutSeconds(state, ip_protocol::SCTP, timeouts), 77u);
    EXPECT_EQ(timeoutSeconds(state, 47, timeouts), 77u);  // GRE
  }
}

TEST(Conntrack, DefaultTimeouts) {
  const ConntrackTimeouts timeouts;
  EXPECT_EQ(timeoutSeconds(ConnState::SynSent, ip_protocol::TCP, timeouts), 30u);
  EXPECT_EQ(timeoutSeconds(ConnState::Established, ip_protocol::TCP, timeouts), 3600u);
  EXPECT_EQ(timeoutSeconds(ConnState::Closing, ip_protocol::TCP, timeouts), 30u);
  EXPECT_EQ(timeoutSeconds(ConnState::Closed, ip_protocol::TCP, timeouts), 10u);
  EXPECT_EQ(timeoutSeconds(ConnState::Established, ip_protocol::UDP, timeouts), 60u);
  EXPECT_EQ(timeoutSeconds(ConnState::New, ip_protocol::ICMP, timeouts), 30u);
}

TEST(Conntrack, StateNames) {
  EXPECT_STREQ(dataplane::toString(ConnState::New), "new");
  EXPECT_STREQ(dataplane::toString(ConnState::SynSent), "syn-sent");
  EXPECT_STREQ(dataplane::toString(ConnState::SynReceived), "syn-received");
  EXPECT_STREQ(dataplane::toString(ConnState::Established), "established");
  EXPECT_STREQ(dataplane::toString(ConnState::Closing), "closing");
  EXPECT_STREQ(dataplane::toString(ConnState::Closed), "closed");
}

}  // namespace
}  // namespace bulkhead
