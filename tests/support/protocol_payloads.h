#pragma once

// Application payloads as real clients and servers write them, byte by byte, for tests that must
// show what nDPI makes of a protocol's bytes on some port: an HTTP request with a Host, a TLS
// ClientHello with an SNI (and a ServerHello), SSH identification strings, DNS queries over UDP
// and TCP. Each builder computes its own lengths.
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/support/frames.h"

namespace bulkhead::testing {

inline std::string asText(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

inline std::string httpRequest(std::string_view host, std::string_view method = "POST") {
  std::string request(method);
  request += " /upload HTTP/1.1\r\nHost: ";
  request += host;
  request += "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n";
  if (method == "POST") {
    request += "Content-Type: application/octet-stream\r\nContent-Length: 8\r\n\r\nsecrets!";
  } else {
    request += "\r\n";
  }
  return request;
}

inline constexpr std::string_view HttpOkResponse =
    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok";

// A TLS 1.3 ClientHello as OpenSSL 3 sends it in outline: record version 1.0, handshake version
// 1.2, a session id, three cipher suites, and the extensions server_name, supported_groups,
// signature_algorithms, supported_versions and key_share.
inline Bytes tlsClientHello(std::string_view serverName) {
  Bytes extensions;
  const auto extension = [&](uint16_t type, const Bytes& body) {
    put16(extensions, type);
    put16(extensions, static_cast<uint16_t>(body.size()));
    extensions.insert(extensions.end(), body.begin(), body.end());
  };
  Bytes sni;
  put16(sni, static_cast<uint16_t>(serverName.size() + 3));
  sni.push_back(0);  // host_name
  put16(sni, static_cast<uint16_t>(serverName.size()));
  sni.insert(sni.end(), serverName.begin(), serverName.end());
  extension(0x0000, sni);
  extension(0x000a, {0x00, 0x04, 0x00, 0x1d, 0x00, 0x17});              // x25519, secp256r1
  extension(0x000d, {0x00, 0x06, 0x08, 0x04, 0x04, 0x03, 0x08, 0x07});  // rsa_pss, ecdsa, ed25519
  extension(0x002b, {0x04, 0x03, 0x04, 0x03, 0x03});                    // TLS 1.3, 1.2
  Bytes keyShare = {0x00, 0x24, 0x00, 0x1d, 0x00, 0x20};
  for (uint8_t i = 0; i < 32; ++i) {
    keyShare.push_back(static_cast<uint8_t>(0x40 + i));
  }
  extension(0x0033, keyShare);

  Bytes hello;
  put16(hello, 0x0303);
  for (uint8_t i = 0; i < 32; ++i) {
    hello.push_back(static_cast<uint8_t>(i * 7 + 1));  // random
  }
  hello.push_back(32);
  for (uint8_t i = 0; i < 32; ++i) {
    hello.push_back(static_cast<uint8_t>(0xA0 + i));  // session id
  }
  put16(hello, 6);
  put16(hello, 0x1302);  // TLS_AES_256_GCM_SHA384
  put16(hello, 0x1301);  // TLS_AES_128_GCM_SHA256
  put16(hello, 0xc02f);  // ECDHE-RSA-AES128-GCM-SHA256
  hello.push_back(1);
  hello.push_back(0);  // null compression
  put16(hello, static_cast<uint16_t>(extensions.size()));
  hello.insert(hello.end(), extensions.begin(), extensions.end());

  Bytes record = {0x16, 0x03, 0x01};
  put16(record, static_cast<uint16_t>(hello.size() + 4));
  record.push_back(0x01);  // client_hello
  record.push_back(0);
  put16(record, static_cast<uint16_t>(hello.size()));
  record.insert(record.end(), hello.begin(), hello.end());
  return record;
}

// The ServerHello that answers it (TLS 1.3: version in supported_versions).
inline Bytes tlsServerHello() {
  Bytes extensions = {0x00, 0x2b, 0x00, 0x02, 0x03, 0x04};
  Bytes hello;
  put16(hello, 0x0303);
  for (uint8_t i = 0; i < 32; ++i) {
    hello.push_back(static_cast<uint8_t>(0x55 ^ i));
  }
  hello.push_back(32);
  for (uint8_t i = 0; i < 32; ++i) {
    hello.push_back(static_cast<uint8_t>(0xA0 + i));
  }
  put16(hello, 0x1302);
  hello.push_back(0);
  put16(hello, static_cast<uint16_t>(extensions.size()));
  hello.insert(hello.end(), extensions.begin(), extensions.end());
  Bytes record = {0x16, 0x03, 0x03};
  put16(record, static_cast<uint16_t>(hello.size() + 4));
  record.push_back(0x02);  // server_hello
  record.push_back(0);
  put16(record, static_cast<uint16_t>(hello.size()));
  record.insert(record.end(), hello.begin(), hello.end());
  return record;
}

inline constexpr std::string_view SshClientBanner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
inline constexpr std::string_view SshServerBanner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";

// A DNS query for an A record of `name`, recursion desired. Over TCP the message is preceded
// by its two-byte length (RFC 1035 4.2.2).
inline Bytes dnsQuery(std::string_view name, uint16_t id, bool overTcp) {
  Bytes message;
  put16(message, id);
  put16(message, 0x0100);  // standard query, RD
  put16(message, 1);       // one question
  put16(message, 0);
  put16(message, 0);
  put16(message, 0);
  size_t start = 0;
  while (start < name.size()) {
    const size_t dot = std::min(name.find('.', start), name.size());
    message.push_back(static_cast<uint8_t>(dot - start));
    message.insert(message.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
                   name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  message.push_back(0);
  put16(message, 1);  // A
  put16(message, 1);  // IN
  if (!overTcp) {
    return message;
  }
  Bytes framed;
  put16(framed, static_cast<uint16_t>(message.size()));
  framed.insert(framed.end(), message.begin(), message.end());
  return framed;
}

}  // namespace bulkhead::testing
