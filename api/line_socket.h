#pragma once

#include <sys/un.h>

#include <cstddef>
#include <string>

namespace bulkhead::api {

// The local API's framing: one JSON line each way over a Unix stream socket.
inline constexpr size_t MaxLine = 1 << 20;

bool fillAddress(const std::string& path, sockaddr_un& address, std::string* error);
void setTimeouts(int fd, int seconds);
bool writeAll(int fd, const std::string& text);
// One line (without its newline), at most MaxLine bytes; false on EOF, error or timeout first.
bool readLine(int fd, std::string& line);

}  // namespace bulkhead::api
