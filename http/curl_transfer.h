#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace bulkhead::http {

// What the agent's HTTP clients (the Docker engine's API, etcd's JSON gateway) share of libcurl:
// a handle set up the same way and the two ways of taking an answer, bounded, since the other
// end is never trusted to keep its answers small.
struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

// A handle for `url`: no signals (the agent is threaded), connecting bounded to
// `connectTimeoutSeconds`. Null when libcurl cannot make one.
CurlHandle newHandle(const std::string& url, long connectTimeoutSeconds = 5);

// The whole body, refused past `maxBytes`: attach, perform, then read `tooLarge`.
struct BodySink {
  explicit BodySink(size_t max) : maxBytes(max) {}
  void attach(CURL* curl);

  std::string body;
  size_t maxBytes;
  bool tooLarge = false;
};

// The body as newline-terminated lines handed to `onLine` as they arrive (empty lines skipped),
// until a line grows past `maxLine` (`lineTooLong`) or `stopRequested` answers true (`stopped`),
// which it is asked at least once a second.
struct LineSink {
  LineSink(std::function<void(std::string_view)> lines, std::function<bool()> stop, size_t max)
      : onLine(std::move(lines)), stopRequested(std::move(stop)), maxLine(max) {}
  void attach(CURL* curl);

  std::function<void(std::string_view)> onLine;
  std::function<bool()> stopRequested;
  size_t maxLine;
  std::string pending;
  bool stopped = false;
  bool lineTooLong = false;
};

// `text` escaped for a URL's query string.
std::string urlEncode(std::string_view text);

}  // namespace bulkhead::http
