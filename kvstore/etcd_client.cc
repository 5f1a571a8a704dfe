#include "kvstore/etcd_client.h"

#include <openssl/evp.h>

#include <charconv>
#include <chrono>

#include "http/curl_transfer.h"
#include "text/untrusted_json.h"

namespace bulkhead::kvstore {
namespace {

using nlohmann::json;

// gRPC's status codes, as the gateway reports them.
constexpr int64_t Unavailable = 14;      // no leader, the member is stopping, ...
constexpr int64_t Unauthenticated = 16;  // the token expired (or never was)

// The gateway writes int64 as a JSON string (proto3's mapping) and leaves out zeros.
bool readInt64(const json& object, std::string_view name, int64_t* out, std::string* error) {
  *out = 0;
  const json* value = text::member(object, name);
  if (!value) {
    return true;
  }
  if (value->is_number_integer()) {
    *out = value->get<int64_t>();
    return true;
  }
  if (value->is_string()) {
    const std::string& digits = value->get_ref<const std::string&>();
    const auto [end, code] = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
    if (code == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
      return true;
    }
  }
  *error = "'" + std::string(name) + "' is not an integer";
  return false;
}

bool readBytes(const json& object, std::string_view name, std::string* out, std::string* error) {
  out->clear();
  const json* value = text::member(object, name);
  if (!value) {
    return true;
  }
  if (value->is_string()) {
    if (auto decoded = base64Decode(value->get_ref<const std::string&>())) {
      *out = std::move(*decoded);
      return true;
    }
  }
  *error = "'" + std::string(name) + "' is not base64";
  return false;
}

bool readKeyValue(const json& object, EtcdClient::KeyValue* kv, std::string* error) {
  return object.is_object() && readBytes(object, "key", &kv->key, error) &&
         readBytes(object, "value", &kv->value, error) &&
         readInt64(object, "create_revision", &kv->createRevision, error) &&
         readInt64(object, "mod_revision", &kv->modRevision, error) &&
         readInt64(object, "version", &kv->version, error) &&
         readInt64(object, "lease", &kv->lease, error);
}

bool readRevision(const json& answer, int64_t* revision, std::string* error) {
  const json* header = text::objectMember(answer, "header");
  return header ? readInt64(*header, "revision", revision, error) : (*revision = 0, true);
}

std::optional<EtcdClient::Range> readRange(const json& answer, std::string* error) {
  EtcdClient::Range range;
  if (!readRevision(answer, &range.revision, error)) {
    return std::nullopt;
  }
  if (const json* kvs = text::member(answer, "kvs")) {
    if (!kvs->is_array()) {
      *error = "'kvs' is not a list";
      return std::nullopt;
    }
    for (const json& item : *kvs) {
      EtcdClient::KeyValue kv;
      if (!readKeyValue(item, &kv, error)) {
        *error = "a key in the answer: " + (error->empty() ? "not an object" : *error);
        return std::nullopt;
      }
      range.kvs.push_back(std::move(kv));
    }
  }
  return range;
}

json rangeRequest(const std::string& key, const std::string& rangeEnd) {
  json request{{"key", base64Encode(key)}};
  if (!rangeEnd.empty()) {
    request["range_end"] = base64Encode(rangeEnd);
  }
  return request;
}

json operationRequest(const EtcdClient::Operation& operation) {
  using Kind = EtcdClient::Operation::Kind;
  switch (operation.kind) {
    case Kind::Put: {
      json put{{"key", base64Encode(operation.key)}, {"value", base64Encode(operation.value)}};
      if (operation.lease != 0) {
        put["lease"] = std::to_string(operation.lease);
      }
      return {{"request_put", std::move(put)}};
    }
    case Kind::Delete:
      return {{"request_delete_range", rangeRequest(operation.key, operation.rangeEnd)}};
    case Kind::Get:
      break;
  }
  return {{"request_range", rangeRequest(operation.key, operation.rangeEnd)}};
}

json compareRequest(const EtcdClient::Compare& compare) {
  using Target = EtcdClient::Compare::Target;
  json request{{"key", base64Encode(compare.key)}, {"result", "EQUAL"}};
  if (!compare.rangeEnd.empty()) {
    request["range_end"] = base64Encode(compare.rangeEnd);
  }
  switch (compare.target) {
    case Target::Version:
      request["target"] = "VERSION";
      request["version"] = std::to_string(compare.number);
      break;
    case Target::CreateRevision:
      request["target"] = "CREATE";
      request["create_revision"] = std::to_string(compare.number);
      break;
    case Target::ModRevision:
      request["target"] = "MOD";
      request["mod_revision"] = std::to_string(compare.number);
      break;
    case Target::Value:
      request["target"] = "VALUE";
      request["value"] = base64Encode(compare.value);
      break;
  }
  return request;
}

// An error answer: {"error": "...", "code": 14} from a call, {"error": {"grpc_code": 14,
// "message": "..."}} inside a stream.
bool readError(const json& answer, int64_t* code, std::string* message) {
  const json* error = text::member(answer, "error");
  if (!error) {
    return false;
  }
  std::string ignored;
  if (error->is_object()) {
    *message = text::stringMember(*error, "message");
    if (!readInt64(*error, "grpc_code", code, &ignored)) {
      *code = 0;
    }
  } else {
    *message = error->is_string() ? error->get<std::string>() : "an error";
    if (!readInt64(answer, "code", code, &ignored)) {
      *code = 0;
    }
  }
  if (message->empty()) {
    *message = "an error without a message";
  }
  return true;
}

}  // namespace

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}

std::string EtcdClient::endpoint() const {
  const std::lock_guard lock(mutex_);
  return options_.endpoints.empty() ? "" : options_.endpoints[current_];
}

std::string EtcdClient::prefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd's "every key"
}

void EtcdClient::configureTls(void* handle) const {
  CURL* curl = static_cast<CURL*>(handle);
  if (!options_.caFile.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.caFile.c_str());
  }
  if (!options_.certFile.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.certFile.c_str());
  }
  if (!options_.keyFile.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options_.keyFile.c_str());
  }
}

std::optional<json> EtcdClient::callOnce(const std::string& endpoint, const std::string& path,
                                         const std::string& body, const std::string& token,
                                         bool* unreachable, std::string* error) const {
  *unreachable = false;
  http::CurlHandle curl = http::newHandle(endpoint + path, options_.timeoutSeconds);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return std::nullopt;
  }
  configureTls(curl.get());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string authorization;
  if (!token.empty()) {
    authorization = "Authorization: " + token;
    headers = curl_slist_append(headers, authorization.c_str());
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(options_.timeoutSeconds));
  http::BodySink sink(text::KvstoreAnswerLimits.maxBytes);
  sink.attach(curl.get());
  const CURLcode code = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    *unreachable = !sink.tooLarge;
    *error = endpoint + ": " +
             (sink.tooLarge ? "an answer larger than " +
                                  std::to_string(text::KvstoreAnswerLimits.maxBytes) + " bytes"
                            : std::string(curl_easy_strerror(code)));
    return std::nullopt;
  }
  std::string parseError;
  // A streaming call (lease keepalive) answers one object per line: the first is the answer.
  const std::string_view first = std::string_view(sink.body).substr(0, sink.body.find('\n'));
  auto answer = text::parseUntrusted(first, text::KvstoreAnswerLimits, &parseError);
  if (!answer || !answer->is_object()) {
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    *error = endpoint + path + ": HTTP " + std::to_string(status) + ", " +
             (answer ? "not an object" : parseError);
    return std::nullopt;
  }
  if (const json* result = text::objectMember(*answer, "result")) {
    return *result;
  }
  return answer;
}

std::optional<std::string> EtcdClient::authenticate(const std::string& endpoint,
                                                    std::string* error) const {
  const json request{{"name", options_.username}, {"password", options_.password}};
  bool unreachable = false;
  const auto answer =
      callOnce(endpoint, "/v3/auth/authenticate", request.dump(), "", &unreachable, error);
  if (!answer) {
    return std::nullopt;
  }
  int64_t code = 0;
  std::string message;
  if (readError(*answer, &code, &message)) {
    *error = endpoint + ": authentication as " + options_.username + " refused: " + message;
    return std::nullopt;
  }
  std::string token = text::stringMember(*answer, "token");
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    *error = endpoint + ": authentication answered no usable token";
    return std::nullopt;
  }
  return token;
}

std::optional<json> EtcdClient::call(const std::string& path, const json& body,
                                     std::string* error) const {
  const auto start = std::chrono::steady_clock::now();
  auto answer = callAnyEndpoint(path, body, error);
  if (observer_) {
    observer_(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              answer.has_value());
  }
  return answer;
}

std::optional<json> EtcdClient::callAnyEndpoint(const std::string& path, const json& body,
                                                std::string* error) const {
  const std::string request = body.dump();
  size_t start = 0;
  std::string token;
  {
    const std::lock_guard lock(mutex_);
    start = current_;
    token = token_;
  }
  const size_t count = options_.endpoints.size();
  if (count == 0) {
    *error = "no etcd endpoint is configured";
    return std::nullopt;
  }
  std::string failures;
  for (size_t attempt = 0; attempt < count; ++attempt) {
    const size_t index = (start + attempt) % count;
    const std::string& endpoint = options_.endpoints[index];
    bool reauthenticated = false;
    for (;;) {
      std::string failure;
      if (!options_.username.empty() && token.empty()) {
        auto fresh = authenticate(endpoint, &failure);
        if (!fresh) {
          failures += (failures.empty() ? "" : "; ") + failure;
          break;
        }
        token = std::move(*fresh);
        const std::lock_guard lock(mutex_);
        token_ = token;
      }
      bool unreachable = false;
      auto answer = callOnce(endpoint, path, request, token, &unreachable, &failure);
      if (!answer) {
        failures += (failures.empty() ? "" : "; ") + failure;
        if (!unreachable) {
          *error = failures;
          return std::nullopt;
        }
        break;
      }
      int64_t code = 0;
      std::string message;
      if (readError(*answer, &code, &message)) {
        if (code == Unauthenticated && !options_.username.empty() && !reauthenticated) {
          reauthenticated = true;
          token.clear();
          continue;
        }
        failures += (failures.empty() ? "" : "; ") + endpoint + ": " + message;
        if (code == Unavailable) {
          break;  // another member may have a leader
        }
        *error = failures;
        return std::nullopt;
      }
      const std::lock_guard lock(mutex_);
      current_ = index;
      return answer;
    }
  }
  *error = "no etcd endpoint answered: " + failures;
  return std::nullopt;
}

std::optional<EtcdClient::Range> EtcdClient::get(const std::string& key, std::string* error,
                                                 bool prefix) const {
  const auto answer = call("/v3/kv/range", rangeRequest(key, prefix ? prefixEnd(key) : ""), error);
  return answer ? readRange(*answer, error) : std::nullopt;
}

bool EtcdClient::put(const std::string& key, const std::string& value, int64_t lease,
                     std::string* error) const {
  json request{{"key", base64Encode(key)}, {"value", base64Encode(value)}};
  if (lease != 0) {
    request["lease"] = std::to_string(lease);
  }
  return call("/v3/kv/put", request, error).has_value();
}

std::optional<int64_t> EtcdClient::remove(const std::string& key, std::string* error,
                                          bool prefix) const {
  const auto answer =
      call("/v3/kv/deleterange", rangeRequest(key, prefix ? prefixEnd(key) : ""), error);
  int64_t deleted = 0;
  if (!answer || !readInt64(*answer, "deleted", &deleted, error)) {
    return std::nullopt;
  }
  return deleted;
}

std::optional<EtcdClient::TxnResult> EtcdClient::txn(const std::vector<Compare>& compares,
                                                     const std::vector<Operation>& success,
                                                     const std::vector<Operation>& failure,
                                                     std::string* error) const {
  json request{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const Compare& compare : compares) {
    request["compare"].push_back(compareRequest(compare));
  }
  for (const Operation& operation : success) {
    request["success"].push_back(operationRequest(operation));
  }
  for (const Operation& operation : failure) {
    request["failure"].push_back(operationRequest(operation));
  }
  const auto answer = call("/v3/kv/txn", request, error);
  if (!answer) {
    return std::nullopt;
  }
  TxnResult result;
  result.succeeded = text::boolMember(*answer, "succeeded").value_or(false);
  if (!readRevision(*answer, &result.revision, error)) {
    return std::nullopt;
  }
  if (const json* responses = text::arrayMember(*answer, "responses")) {
    for (const json& response : *responses) {
      if (const json* range = text::objectMember(response, "response_range")) {
        auto read = readRange(*range, error);
        if (!read) {
          return std::nullopt;
        }
        result.ranges.push_back(std::move(*read));
      }
    }
  }
  return result;
}

std::optional<int64_t> EtcdClient::grantLease(int64_t ttlSeconds, std::string* error) const {
  const auto answer = call("/v3/lease/grant", json{{"TTL", std::to_string(ttlSeconds)}}, error);
  int64_t id = 0;
  if (!answer || !readInt64(*answer, "ID", &id, error)) {
    return std::nullopt;
  }
  if (id == 0) {
    *error = "the lease granted has no id";
    return std::nullopt;
  }
  return id;
}

std::optional<int64_t> EtcdClient::keepAlive(int64_t lease, std::string* error) const {
  const auto answer = call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}, error);
  int64_t ttl = 0;
  if (!answer || !readInt64(*answer, "TTL", &ttl, error)) {
    return std::nullopt;
  }
  return ttl;
}

bool EtcdClient::revokeLease(int64_t lease, std::string* error) const {
  return call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}, error).has_value();
}

bool EtcdClient::watch(const std::string& prefix, int64_t fromRevision,
                       const std::function<void(const std::vector<WatchEvent>&, int64_t)>& onEvents,
                       const std::function<bool()>& stopRequested, std::string* error) const {
  const std::string endpoint = this->endpoint();
  std::string token;
  if (!options_.username.empty()) {
    auto fresh = authenticate(endpoint, error);
    if (!fresh) {
      return false;
    }
    token = std::move(*fresh);
  }
  json create = rangeRequest(prefix, prefixEnd(prefix));
  create["start_revision"] = std::to_string(fromRevision);
  const std::string body = json{{"create_request", create}}.dump();

  std::string failure;  // the first thing wrong with the stream; it ends the watch
  http::LineSink lines(
      [&](std::string_view line) {
        if (!failure.empty()) {
          return;
        }
        auto message = text::parseUntrusted(line, text::KvstoreEventLimits, &failure);
        if (!message || !message->is_object()) {
          failure = "a watch message: " + (failure.empty() ? "not an object" : failure);
          return;
        }
        int64_t code = 0;
        std::string reason;
        if (readError(*message, &code, &reason)) {
          failure = reason;
          return;
        }
        const json* result = text::objectMember(*message, "result");
        if (!result) {
          failure = "a watch message without a result";
          return;
        }
        int64_t compacted = 0;
        if (!readInt64(*result, "compact_revision", &compacted, &failure)) {
          return;
        }
        if (compacted != 0) {
          failure = "revision " + std::to_string(fromRevision) +
                    " was compacted; the oldest left is " + std::to_string(compacted);
          return;
        }
        if (text::boolMember(*result, "canceled").value_or(false)) {
          failure = "etcd canceled the watch: " + text::stringMember(*result, "cancel_reason");
          return;
        }
        std::vector<WatchEvent> events;
        int64_t revision = 0;
        if (!readRevision(*result, &revision, &failure)) {
          return;
        }
        if (const json* list = text::member(*result, "events"); list && list->is_array()) {
          for (const json& item : *list) {
            WatchEvent event;
            event.deleted = text::stringMember(item, "type") == "DELETE";
            const json* kv = text::objectMember(item, "kv");
            if (!kv || !readKeyValue(*kv, &event.kv, &failure)) {
              failure = "a watch event: " + (failure.empty() ? "no key" : failure);
              return;
            }
            revision = std::max(revision, event.kv.modRevision);
            events.push_back(std::move(event));
          }
        }
        if (!events.empty()) {
          onEvents(events, revision);
        }
      },
      [&] { return !failure.empty() || stopRequested(); }, text::KvstoreEventLimits.maxBytes);

  http::CurlHandle curl = http::newHandle(endpoint + "/v3/watch", options_.timeoutSeconds);
  if (!curl) {
    *error = "cannot create an HTTP handle";
    return false;
  }
  configureTls(curl.get());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string authorization = "Authorization: " + token;
  if (!token.empty()) {
    headers = curl_slist_append(headers, authorization.c_str());
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  // A watch is quiet while nothing changes: a member that vanished is found by TCP keepalives.
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPIDLE, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPINTVL, 2L);
  lines.attach(curl.get());
  const CURLcode code = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (!failure.empty()) {
    *error = endpoint + ": " + failure;
    return false;
  }
  if (lines.stopped) {
    return true;
  }
  *error = endpoint + ": the watch ended: " +
           (lines.lineTooLong  ? "a message larger than the limit"
            : code != CURLE_OK ? std::string(curl_easy_strerror(code))
                               : std::string("the member closed it"));
  return false;
}

std::string base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.resize(written);
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(3 * (text.size() / 4), '\0');
  const int written =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (written < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock decodes the padding as zero bytes: they are not part of the data.
  size_t padding = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && padding < 2; --i) {
    ++padding;
  }
  out.resize(static_cast<size_t>(written) - padding);
  return out;
}

}  // namespace bulkhead::kvstore
