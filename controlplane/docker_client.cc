#include "controlplane/docker_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace bulkhead::controlplane {
namespace {

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

CurlPtr newHandle(const std::string& socketPath, const std::string& path) {
  static std::once_flag initialized;
  std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_NOTHING); });
  CurlPtr curl(curl_easy_init());
  if (!curl) {
    return curl;
  }
  curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socketPath.c_str());
  // The host part is ignored on a Unix socket; the engine wants a Host header all the same.
  const std::string url = "http://docker" + path;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 5L);
  return curl;
}

struct BodyState {
  std::string* body;
  size_t maxBytes;
  bool tooLarge = false;
};

// Returning less than was handed over aborts the transfer (CURLE_WRITE_ERROR).
size_t appendBody(char* data, size_t size, size_t count, void* opaque) {
  auto* state = static_cast<BodyState*>(opaque);
  if (state->body->size() + size * count > state->maxBytes) {
    state->tooLarge = true;
    return 0;
  }
  state->body->append(data, size * count);
  return size * count;
}

struct StreamState {
  std::string pending;
  const std::function<void(std::string_view)>* onLine;
  const std::function<bool()>* stopRequested;
  size_t maxLine;
  bool stopped = false;
  bool lineTooLong = false;
};

size_t splitLines(char* data, size_t size, size_t count, void* opaque) {
  auto* state = static_cast<StreamState*>(opaque);
  state->pending.append(data, size * count);
  size_t start = 0;
  for (size_t end = state->pending.find('\n'); end != std::string::npos;
       end = state->pending.find('\n', start)) {
    if (end > start) {
      (*state->onLine)(std::string_view(state->pending).substr(start, end - start));
    }
    start = end + 1;
  }
  state->pending.erase(0, start);
  if (state->pending.size() > state->maxLine) {
    state->lineTooLong = true;
    return 0;
  }
  return size * count;
}

int checkStop(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* state = static_cast<StreamState*>(opaque);
  if ((*state->stopRequested)()) {
    state->stopped = true;
    return 1;  // aborts the transfer
  }
  return 0;
}

}  // namespace

DockerClient::DockerClient(std::string socketPath, int timeoutSeconds)
    : socketPath_(std::move(socketPath)), timeoutSeconds_(timeoutSeconds) {}

std::optional<DockerClient::Response> DockerClient::get(const std::string& path, std::string* error,
                                                        size_t maxBytes) const {
  CurlPtr curl = newHandle(socketPath_, path);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return std::nullopt;
  }
  Response response;
  BodyState body{&response.body, maxBytes};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeoutSeconds_));
  if (const CURLcode code = curl_easy_perform(curl.get()); code != CURLE_OK) {
    if (body.tooLarge) {
      *error = "GET " + path + " on " + socketPath_ + ": the answer is larger than " +
               std::to_string(maxBytes) + " bytes";
      return std::nullopt;
    }
    *error = "GET " + path + " on " + socketPath_ + ": " + curl_easy_strerror(code);
    return std::nullopt;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

bool DockerClient::stream(const std::string& path,
                          const std::function<void(std::string_view)>& onLine,
                          const std::function<bool()>& stopRequested, std::string* error,
                          size_t maxLine) const {
  CurlPtr curl = newHandle(socketPath_, path);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return false;
  }
  StreamState state{"", &onLine, &stopRequested, maxLine};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, splitLines);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, checkStop);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &state);
  const CURLcode code = curl_easy_perform(curl.get());
  if (state.stopped) {
    return true;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  *error = state.lineTooLong ? "event stream " + path + ": a line longer than " +
                                   std::to_string(maxLine) + " bytes"
           : code != CURLE_OK ? "event stream " + path + ": " + curl_easy_strerror(code)
           : status != 200    ? "event stream " + path + ": HTTP " + std::to_string(status)
                              : "the engine closed the event stream";
  return false;
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

}  // namespace bulkhead::controlplane
