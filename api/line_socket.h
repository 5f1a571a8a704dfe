#pragma once

#include <sys/un.h>

#include <cstddef>
#include <string>

namespace bulkhead::api {

// The local API's framing: one JSON line each way over a Unix stream socket. Requests are
// bounded by text::ApiRequestLimits; answers (a flow table) can be far larger.
inline constexpr size_t MaxAnswerBytes = size_t(1) << 30;

bool fillAddress(const std::string& path, sockaddr_un& address, std::string* error);
void setTimeouts(int fd, int seconds);
bool writeAll(int fd, const std::string& text);
// One line (without its newline), at most `maxBytes`; false on EOF, error or timeout first.
bool readLine(int fd, std::string& line, size_t maxBytes);

}  // namespace bulkhead::api
