#include "controlplane/docker_client.h"

#include "http/curl_transfer.h"

namespace bulkhead::controlplane {
namespace {

http::CurlHandle newHandle(const std::string& socketPath, const std::string& path) {
  // The host part is ignored on a Unix socket; the engine wants a Host header all the same.
  http::CurlHandle curl = http::newHandle("http://docker" + path);
  if (curl) {
    curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socketPath.c_str());
  }
  return curl;
}

}  // namespace

DockerClient::DockerClient(std::string socketPath, int timeoutSeconds)
    : socketPath_(std::move(socketPath)), timeoutSeconds_(timeoutSeconds) {}

std::optional<DockerClient::Response> DockerClient::get(const std::string& path, std::string* error,
                                                        size_t maxBytes) const {
  http::CurlHandle curl = newHandle(socketPath_, path);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return std::nullopt;
  }
  http::BodySink body(maxBytes);
  body.attach(curl.get());
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
  Response response;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(body.body);
  return response;
}

bool DockerClient::stream(const std::string& path,
                          const std::function<void(std::string_view)>& onLine,
                          const std::function<bool()>& stopRequested, std::string* error,
                          size_t maxLine) const {
  http::CurlHandle curl = newHandle(socketPath_, path);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return false;
  }
  http::LineSink lines(onLine, stopRequested, maxLine);
  lines.attach(curl.get());
  const CURLcode code = curl_easy_perform(curl.get());
  if (lines.stopped) {
    return true;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  *error = lines.lineTooLong ? "event stream " + path + ": a line longer than " +
                                   std::to_string(maxLine) + " bytes"
           : code != CURLE_OK ? "event stream " + path + ": " + curl_easy_strerror(code)
           : status != 200    ? "event stream " + path + ": HTTP " + std::to_string(status)
                              : "the engine closed the event stream";
  return false;
}

}  // namespace bulkhead::controlplane
