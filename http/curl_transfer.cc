#include "http/curl_transfer.h"

#include <cctype>
#include <mutex>

namespace bulkhead::http {
namespace {

// Returning less than was handed over aborts the transfer (CURLE_WRITE_ERROR).
size_t appendBody(char* data, size_t size, size_t count, void* opaque) {
  auto* sink = static_cast<BodySink*>(opaque);
  if (sink->body.size() + size * count > sink->maxBytes) {
    sink->tooLarge = true;
    return 0;
  }
  sink->body.append(data, size * count);
  return size * count;
}

size_t splitLines(char* data, size_t size, size_t count, void* opaque) {
  auto* sink = static_cast<LineSink*>(opaque);
  sink->pending.append(data, size * count);
  size_t start = 0;
  for (size_t end = sink->pending.find('\n'); end != std::string::npos;
       end = sink->pending.find('\n', start)) {
    if (end > start) {
      sink->onLine(std::string_view(sink->pending).substr(start, end - start));
    }
    start = end + 1;
  }
  sink->pending.erase(0, start);
  if (sink->pending.size() > sink->maxLine) {
    sink->lineTooLong = true;
    return 0;
  }
  return size * count;
}

int checkStop(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* sink = static_cast<LineSink*>(opaque);
  if (sink->stopRequested()) {
    sink->stopped = true;
    return 1;  // aborts the transfer
  }
  return 0;
}

}  // namespace

CurlHandle newHandle(const std::string& url, long connectTimeoutSeconds) {
  static std::once_flag initialized;
  std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlHandle curl(curl_easy_init());
  if (!curl) {
    return curl;
  }
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, connectTimeoutSeconds);
  return curl;
}

void BodySink::attach(CURL* curl) {
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
}

void LineSink::attach(CURL* curl) {
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, splitLines);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, checkStop);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
}

std::string urlEncode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace bulkhead::http
