#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::kvstore {

// Where the store is and how to prove who we are: the `kvstore` configuration key
// (docs/multihost.md).
struct EtcdOptions {
  std::vector<std::string> endpoints;  // client URLs, "http://10.0.0.5:2379" or "https://..."
  std::string caFile;                  // TLS: the CA that signed the members' certificates
  std::string certFile;                // TLS client authentication
  std::string keyFile;
  std::string username;  // etcd's own authentication (a token from /v3/auth/authenticate)
  std::string password;
  int timeoutSeconds = 5;  // every request but a watch
};

// etcd's v3 API through its JSON gateway (/v3/kv/..., /v3/lease/..., /v3/watch) over libcurl:
// the same API and guarantees as gRPC (one revision per change, transactions, leases, watches from
// a revision) without a generated stub for a protocol Debian ships no C++ client for. Keys and
// values are bytes; the gateway's base64 is this class's business. Blocking: each call is one
// request, tried on each endpoint in turn while the one in use is unreachable or has no leader.
// Thread-safe: calls may come from several threads at once.
//
// Every answer is read as hostile: bounded in size, and a member of the wrong type is an error.
class EtcdClient {
 public:
  struct KeyValue {
    std::string key;
    std::string value;
    int64_t createRevision = 0;
    int64_t modRevision = 0;
    int64_t version = 0;
    int64_t lease = 0;
  };

  struct Range {
    std::vector<KeyValue> kvs;
    int64_t revision = 0;  // the store's revision the answer was read at
  };

  // One condition of a transaction, on `key` (or every key in [key, rangeEnd)).
  struct Compare {
    enum class Target { Version, CreateRevision, ModRevision, Value };
    std::string key;
    Target target = Target::Version;
    int64_t number = 0;  // Version, CreateRevision, ModRevision: equal to this
    std::string value;   // Value: equal to this
    std::string rangeEnd;
  };

  struct Operation {
    enum class Kind { Put, Delete, Get };
    Kind kind = Kind::Get;
    std::string key;
    std::string value;     // Put
    int64_t lease = 0;     // Put: the key goes when the lease does
    std::string rangeEnd;  // Delete, Get: every key in [key, rangeEnd)
  };

  struct TxnResult {
    bool succeeded = false;
    int64_t revision = 0;
    std::vector<Range> ranges;  // the answers of the branch's Get operations, in order
  };

  struct WatchEvent {
    bool deleted = false;
    KeyValue kv;  // for a delete: the key and the revision it was deleted at
  };

  explicit EtcdClient(EtcdOptions options);

  // The key or, with `prefix`, every key that starts with it. nullopt with `error` when no
  // endpoint answered or the answer was unusable.
  std::optional<Range> get(const std::string& key, std::string* error, bool prefix = false) const;
  bool put(const std::string& key, const std::string& value, int64_t lease,
           std::string* error) const;
  // How many keys went.
  std::optional<int64_t> remove(const std::string& key, std::string* error,
                                bool prefix = false) const;
  // If every compare holds, `success` is applied, else `failure`: atomically, at one revision.
  std::optional<TxnResult> txn(const std::vector<Compare>& compares,
                               const std::vector<Operation>& success,
                               const std::vector<Operation>& failure, std::string* error) const;

  // A lease of `ttlSeconds`: its id.
  std::optional<int64_t> grantLease(int64_t ttlSeconds, std::string* error) const;
  // Renews the lease: the seconds it has left, 0 when it has expired or been revoked (its keys
  // are gone then).
  std::optional<int64_t> keepAlive(int64_t lease, std::string* error) const;
  bool revokeLease(int64_t lease, std::string* error) const;

  // Every change under `prefix` from `fromRevision` on, handed to `onEvents` with the revision of
  // the change, until `stopRequested` answers true (true: asked at least once a second) or the
  // stream fails (false, with `error`). A revision that was compacted away is an error naming the
  // oldest revision left: read again, then watch from there.
  bool watch(const std::string& prefix, int64_t fromRevision,
             const std::function<void(const std::vector<WatchEvent>&, int64_t)>& onEvents,
             const std::function<bool()>& stopRequested, std::string* error) const;

  // The endpoint that answered last (or the first).
  std::string endpoint() const;

  // Told of every request but a watch, when it ends: how long it took (failing over included)
  // and whether it was answered. Set before the client is shared; called on the caller's thread.
  using Observer = std::function<void(double seconds, bool answered)>;
  void setObserver(Observer observer) { observer_ = std::move(observer); }

  // The end of the range of every key that starts with `prefix`.
  static std::string prefixEnd(std::string_view prefix);

 private:
  // POSTs `body` to `path`; the decoded answer, or nullopt with `error`. Fails over to the next
  // endpoint on a transport failure or an unavailable member, authenticates when configured.
  std::optional<nlohmann::json> call(const std::string& path, const nlohmann::json& body,
                                     std::string* error) const;
  std::optional<nlohmann::json> callAnyEndpoint(const std::string& path, const nlohmann::json& body,
                                                std::string* error) const;
  std::optional<nlohmann::json> callOnce(const std::string& endpoint, const std::string& path,
                                         const std::string& body, const std::string& token,
                                         bool* unreachable, std::string* error) const;
  std::optional<std::string> authenticate(const std::string& endpoint, std::string* error) const;
  void configureTls(void* curl) const;

  EtcdOptions options_;
  Observer observer_;
  mutable std::mutex mutex_;  // guards what follows
  mutable size_t current_ = 0;
  mutable std::string token_;
};

// Base64 as the gateway speaks it (RFC 4648, padded); decoding refuses anything else.
std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace bulkhead::kvstore
