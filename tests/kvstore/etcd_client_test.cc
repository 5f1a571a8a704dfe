// The etcd client against a real etcd (Debian's etcd-server 3.4) on loopback ports: what it
// writes is what etcd keeps, and what etcd does in a fault is what the client reports.
#include "kvstore/etcd_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/etcd_test.h"
#include "tests/support/run_command.h"

namespace bulkhead::kvstore {
namespace {

using EtcdClientTest = testing::EtcdTest;

class ThreeMemberEtcdTest : public testing::EtcdTest {
 protected:
  ThreeMemberEtcdTest() : EtcdTest(3) {}
};

EtcdClient clientOf(const std::vector<std::string>& endpoints) {
  EtcdOptions options;
  options.endpoints = endpoints;
  options.timeoutSeconds = 2;
  return EtcdClient(options);
}

TEST(Base64, RoundTripsEveryByteAndRefusesWhatIsNotBase64) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes += static_cast<char>(i);
  }
  for (size_t size : {0, 1, 2, 3, 4, 255, 256}) {
    const std::string part = bytes.substr(0, size);
    EXPECT_EQ(base64Decode(base64Encode(part)), part) << size;
  }
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Decode("YmFy"), "bar");
  EXPECT_EQ(base64Decode("YQ=="), "a");
  EXPECT_FALSE(base64Decode("YQ="));   // not a multiple of four
  EXPECT_FALSE(base64Decode("Y!=="));  // not the alphabet
}

TEST_F(EtcdClientTest, KeysAndValuesAreBytesAndPrefixesAreRanges) {
  const EtcdClient client(options());
  std::string error;
  const std::string binary("a\0b\xff\n\"}", 7);
  ASSERT_TRUE(client.put("/t/one", binary, 0, &error)) << error;
  ASSERT_TRUE(client.put("/t/two", "2", 0, &error)) << error;
  ASSERT_TRUE(client.put("/u/three", "3", 0, &error)) << error;

  const auto one = client.get("/t/one", &error);
  ASSERT_TRUE(one) << error;
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, binary);
  EXPECT_EQ(one->kvs[0].version, 1);
  EXPECT_GT(one->revision, 0);

  const auto prefix = client.get("/t/", &error, true);
  ASSERT_TRUE(prefix) << error;
  ASSERT_EQ(prefix->kvs.size(), 2u);
  EXPECT_EQ(prefix->kvs[0].key, "/t/one");
  EXPECT_EQ(prefix->kvs[1].key, "/t/two");

  EXPECT_EQ(client.remove("/t/", &error, true), 2);
  const auto gone = client.get("/t/", &error, true);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->kvs.empty());
  EXPECT_EQ(client.get("/u/three", &error)->kvs.size(), 1u) << "outside the prefix";
}

TEST_F(EtcdClientTest, ATransactionAppliesOneBranchAtomically) {
  const EtcdClient client(options());
  using Compare = EtcdClient::Compare;
  using Operation = EtcdClient::Operation;
  const std::vector<Compare> absent{{"/k", Compare::Target::Version, 0, "", ""}};
  const std::vector<Operation> create{{Operation::Kind::Put, "/k", "first", 0, ""},
                                      {Operation::Kind::Put, "/k-also", "x", 0, ""}};
  const std::vector<Operation> read{{Operation::Kind::Get, "/k", "", 0, ""}};
  std::string error;
  const auto first = client.txn(absent, create, read, &error);
  ASSERT_TRUE(first) << error;
  EXPECT_TRUE(first->succeeded);
  EXPECT_TRUE(first->ranges.empty());

  const auto second =
      client.txn(absent, {{Operation::Kind::Put, "/k", "second", 0, ""}}, read, &error);
  ASSERT_TRUE(second) << error;
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->ranges.size(), 1u);
  ASSERT_EQ(second->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(second->ranges[0].kvs[0].value, "first");

  // A compare over a range holds when it holds for every key in it, and for no key at all.
  const auto empty =
      client.txn({{"/none/", Compare::Target::Version, 0, "", EtcdClient::prefixEnd("/none/")}}, {},
                 {}, &error);
  ASSERT_TRUE(empty) << error;
  EXPECT_TRUE(empty->succeeded);
  const auto taken = client.txn(
      {{"/k", Compare::Target::Version, 0, "", EtcdClient::prefixEnd("/k")}}, {}, {}, &error);
  ASSERT_TRUE(taken) << error;
  EXPECT_FALSE(taken->succeeded);
}

TEST_F(EtcdClientTest, KeysUnderALeaseGoWithIt) {
  const EtcdClient client(options());
  std::string error;
  const auto lease = client.grantLease(30, &error);
  ASSERT_TRUE(lease) << error;
  ASSERT_TRUE(client.put("/leased", "v", *lease, &error)) << error;
  EXPECT_EQ(client.get("/leased", &error)->kvs.at(0).lease, *lease);
  const auto left = client.keepAlive(*lease, &error);
  ASSERT_TRUE(left) << error;
  EXPECT_GT(*left, 0);
  EXPECT_LE(*left, 30);

  ASSERT_TRUE(client.revokeLease(*lease, &error)) << error;
  EXPECT_TRUE(client.get("/leased", &error)->kvs.empty());
  EXPECT_EQ(client.keepAlive(*lease, &error), 0) << "a revoked lease has nothing left";
  EXPECT_FALSE(client.put("/leased", "v", *lease, &error));
  EXPECT_NE(error.find("lease not found"), std::string::npos) << error;
}

TEST_F(EtcdClientTest, AWatchSeesEveryChangeInOrderAndStopsWhenAsked) {
  const EtcdClient client(options());
  std::string error;
  ASSERT_TRUE(client.put("/w/before", "0", 0, &error)) << error;
  const int64_t from = client.get("/w/", &error, true)->revision + 1;

  std::mutex mutex;
  std::vector<std::string> seen;
  std::atomic<bool> stop{false};
  bool watched = false;
  std::string watchError;
  std::thread watcher([&] {
    watched = client.watch(
        "/w/", from,
        [&](const std::vector<EtcdClient::WatchEvent>& events, int64_t) {
          const std::lock_guard lock(mutex);
          for (const auto& event : events) {
            seen.push_back((event.deleted ? "delete " : "put ") + event.kv.key + "=" +
                           event.kv.value);
          }
        },
        [&] { return stop.load(); }, &watchError);
  });
  ASSERT_TRUE(client.put("/w/a", "1", 0, &error)) << error;
  ASSERT_TRUE(client.put("/elsewhere", "x", 0, &error)) << error;
  ASSERT_TRUE(client.put("/w/a", "2", 0, &error)) << error;
  ASSERT_TRUE(client.remove("/w/a", &error)) << error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      const std::lock_guard lock(mutex);
      if (seen.size() >= 3) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto asked = std::chrono::steady_clock::now();
  stop = true;
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(3));
  EXPECT_TRUE(watched) << watchError;
  EXPECT_EQ(seen, (std::vector<std::string>{"put /w/a=1", "put /w/a=2", "delete /w/a="}));
}

TEST_F(EtcdClientTest, AWatchFromACompactedRevisionSaysWhereToStartAgain) {
  const EtcdClient client(options());
  std::string error;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.put("/c/k", std::to_string(i), 0, &error)) << error;
  }
  const int64_t revision = client.get("/c/k", &error)->revision;
  const auto compacted =
      testing::runCommand({"/usr/bin/etcdctl", "--endpoints=" + etcd_->clientUrl(0), "compaction",
                           std::to_string(revision)},
                          30);
  if (compacted.exitCode != 0) {
    GTEST_SKIP() << "needs etcdctl (Debian's etcd-client): " << compacted.err;
  }
  const bool watched = client.watch(
      "/c/", 2, [](const auto&, int64_t) {}, [] { return false; }, &error);
  EXPECT_FALSE(watched);
  EXPECT_NE(error.find("compacted; the oldest left is " + std::to_string(revision)),
            std::string::npos)
      << error;
}

TEST_F(ThreeMemberEtcdTest, AMemberDownIsPassedOverAndNoMemberUpIsAnError) {
  const EtcdClient client(options());
  std::string error;
  ASSERT_TRUE(client.put("/f/k", "before", 0, &error)) << error;
  EXPECT_EQ(client.endpoint(), etcd_->clientUrl(0));

  etcd_->stop(0);  // the member in use, killed; if it led, the others elect a leader first
  bool written = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!written && std::chrono::steady_clock::now() < deadline) {
    written = client.put("/f/k", "after", 0, &error);
  }
  ASSERT_TRUE(written) << error;
  EXPECT_NE(client.endpoint(), etcd_->clientUrl(0));
  EXPECT_EQ(client.get("/f/k", &error)->kvs.at(0).value, "after");

  const EtcdClient nowhere = clientOf({etcd_->clientUrl(0)});
  EXPECT_FALSE(nowhere.get("/f/k", &error));
  EXPECT_NE(error.find("no etcd endpoint answered"), std::string::npos) << error;
  EXPECT_NE(error.find(etcd_->clientUrl(0)), std::string::npos) << error;
}

TEST_F(EtcdClientTest, AuthenticatesWithUserAndPassword) {
  const std::string endpoints = "--endpoints=" + etcd_->clientUrl(0);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"/usr/bin/etcdctl", endpoints, "user", "add", "root:s3cret"},
        std::vector<std::string>{"/usr/bin/etcdctl", endpoints, "auth", "enable"}}) {
    const auto run = testing::runCommand(command, 30);
    if (run.exitCode != 0) {
      GTEST_SKIP() << "needs etcdctl (Debian's etcd-client): " << run.err << run.out;
    }
  }
  EtcdOptions options = this->options();
  options.username = "root";
  options.password = "s3cret";
  const EtcdClient client(options);
  std::string error;
  ASSERT_TRUE(client.put("/a/k", "v", 0, &error)) << error;
  EXPECT_EQ(client.get("/a/k", &error)->kvs.at(0).value, "v");

  EXPECT_FALSE(EtcdClient(this->options()).get("/a/k", &error)) << "no credentials";
  options.password = "wrong";
  EXPECT_FALSE(EtcdClient(options).get("/a/k", &error));
  EXPECT_NE(error.find("authentication as root refused"), std::string::npos) << error;
}

}  // namespace
}  // namespace bulkhead::kvstore

namespace bulkhead::kvstore {
namespace {

// A CA, a certificate for 127.0.0.1 and one for a client, all signed by it (openssl CLI).
std::optional<testing::EtcdCluster::Tls> makeCertificates(const testing::TempDir& dir,
                                                          std::string* why) {
  const std::string openssl = "/usr/bin/openssl";
  testing::EtcdCluster::Tls tls{dir.file("ca.pem"), dir.file("server.pem"), dir.file("server.key"),
                                dir.file("client.pem"), dir.file("client.key")};
  const std::string extensions =
      dir.write("ext.cnf", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  std::vector<std::vector<std::string>> commands = {
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("ca.key"),
       "-out", tls.caFile, "-days", "1", "-subj", "/CN=bulkhead-test-ca"}};
  for (const auto& [cert, key, name] : {std::tuple{tls.serverCert, tls.serverKey, "127.0.0.1"},
                                        std::tuple{tls.clientCert, tls.clientKey, "bulkhead"}}) {
    const std::string request = cert + ".csr";
    commands.push_back({openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        request, "-subj", std::string("/CN=") + name});
    commands.push_back({openssl, "x509", "-req", "-in", request, "-CA", tls.caFile, "-CAkey",
                        dir.file("ca.key"), "-CAcreateserial", "-out", cert, "-days", "1",
                        "-extfile", extensions});
  }
  for (const auto& command : commands) {
    const auto run = testing::runCommand(command, 60);
    if (run.exitCode != 0) {
      *why = command[1] + ": " + run.err;
      return std::nullopt;
    }
  }
  return tls;
}

// #14 item 4: TLS with client certificates, as the `kvstore.tls` keys configure it.
TEST(EtcdClientTls, ClientCertificatesAreShownAndTheServersIsChecked) {
  if (!testing::EtcdCluster::available() || ::access("/usr/bin/openssl", X_OK) != 0) {
    GTEST_SKIP() << "needs Debian's etcd-server and openssl (scripts/setup.sh installs them)";
  }
  testing::TempDir dir;
  std::string why;
  const auto tls = makeCertificates(dir, &why);
  ASSERT_TRUE(tls) << why;
  testing::EtcdCluster etcd(dir, 1, *tls);
  ASSERT_TRUE(etcd.ready()) << etcd.log(0);
  ASSERT_EQ(etcd.clientUrl(0).rfind("https://", 0), 0u);

  const EtcdClient client(etcd.clientOptions());
  std::string error;
  ASSERT_TRUE(client.put("/tls/k", "v", 0, &error)) << error;
  EXPECT_EQ(client.get("/tls/k", &error)->kvs.at(0).value, "v");

  EtcdOptions noCertificate = etcd.clientOptions();
  noCertificate.certFile.clear();
  noCertificate.keyFile.clear();
  EXPECT_FALSE(EtcdClient(noCertificate).get("/tls/k", &error)) << "etcd wants a client's";
  EtcdOptions unknownServer = etcd.clientOptions();
  unknownServer.caFile.clear();  // the system's CAs: none signed this etcd's certificate
  EXPECT_FALSE(EtcdClient(unknownServer).get("/tls/k", &error));
  EXPECT_NE(error.find("no etcd endpoint answered"), std::string::npos) << error;
}

}  // namespace
}  // namespace bulkhead::kvstore
