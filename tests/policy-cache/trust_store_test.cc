// Tests for policy-cache/trust_store.cc: one parsed X509_STORE shared by
// every fetcher, loaded lazily, reloaded after kTrustStoreMaxAge (manual
// clock, never a sleep), load failures as https-ca outcomes naming the
// file.  The fetches through a shared store are in https_fetcher_test.cc.
#include "policy-cache/trust_store.h"

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "policy-cache/curl_handles.h"
#include "tests/policy-cache/local_tls_server.h"

using namespace stsguard;
using namespace stsguard_test;

namespace {

FetchSettings with_ca_file(const std::string& path) {
    FetchSettings s;
    s.ca_file = path;
    return s;
}

FetchSettings with_ca_dir(const std::string& path) {
    FetchSettings s;
    s.ca_dir = path;
    return s;
}

// Certificates held in memory by the store (a hashed directory's are
// read only when a chain needs them, so they are not counted here).
int certificates_in(X509_STORE* store) {
    int n = 0;
    STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i) {
        if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_X509) ++n;
    }
    return n;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    REQUIRE(f);
    f << text;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void require_loaded(const Lookup<X509StoreRef>& r) {
    REQUIRE_MESSAGE(r.found(), (r.failed() ? r.failure().code + ": " + r.failure().reason : ""));
}

// A store over one private CA's file, and the clock it ages by.
struct OneCaStore {
    TestCa ca;
    ManualClock clock;
    TrustStore store{with_ca_file(ca.path()), clock};
};

}  // namespace

TEST_CASE("trust store: nothing is read until first use") {
    ManualClock clock;
    TrustStore store(with_ca_file("/nonexistent/stsguard-ca.pem"), clock);
    CHECK(store.loads() == 0);  // a missing file is not a start-up error
    CHECK(store.acquire().failed());
    CHECK(store.loads() == 0);
}

TEST_CASE_FIXTURE(OneCaStore, "trust store: parsed once and shared by every caller, from any thread") {
    constexpr int kThreads = 8;
    std::vector<X509_STORE*> seen(kThreads, nullptr);
    std::vector<X509StoreRef> held(kThreads);
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < kThreads; ++i) {
            threads.emplace_back([&, i] {
                for (int n = 0; n < 50; ++n) {
                    auto r = store.acquire();
                    if (!r.found()) return;
                    seen[i] = r.value().get();
                    held[i] = std::move(r.value());
                }
            });
        }
        for (auto& t : threads) t.join();
    }
    CHECK(store.loads() == 1);
    for (int i = 0; i < kThreads; ++i) {
        CAPTURE(i);
        REQUIRE(seen[i] != nullptr);
        CHECK(seen[i] == seen[0]);
    }
    CHECK(certificates_in(seen[0]) == 1);
}

TEST_CASE_FIXTURE(OneCaStore, "trust store: reloaded after one hour (manual clock), not before") {
    auto first = store.acquire();
    require_loaded(first);
    CHECK(store.loads() == 1);

    clock.advance(kTrustStoreMaxAge - Seconds{1});
    auto same = store.acquire();
    require_loaded(same);
    CHECK(same.value().get() == first.value().get());
    CHECK(store.loads() == 1);

    clock.advance(Seconds{1});
    auto reloaded = store.acquire();
    require_loaded(reloaded);
    CHECK(reloaded.value().get() != first.value().get());
    CHECK(store.loads() == 2);

    // The new store ages from its own load.
    clock.advance(kTrustStoreMaxAge - Seconds{1});
    CHECK(store.acquire().value().get() == reloaded.value().get());
    CHECK(store.loads() == 2);
}

TEST_CASE("trust store: a reload reads the CA file anew") {
    TestCa a("stsguard test CA A");
    TestCa b("stsguard test CA B");
    TempDir dir;
    const std::string path = dir.path() + "/ca.pem";
    write_file(path, read_file(a.path()));
    ManualClock clock;
    TrustStore store(with_ca_file(path), clock);
    require_loaded(store.acquire());
    CHECK(certificates_in(store.acquire().value().get()) == 1);

    write_file(path, read_file(a.path()) + read_file(b.path()));
    CHECK(certificates_in(store.acquire().value().get()) == 1);  // not yet
    clock.advance(kTrustStoreMaxAge);
    CHECK(certificates_in(store.acquire().value().get()) == 2);
}

TEST_CASE_FIXTURE(OneCaStore, "trust store: a store in use survives a reload (its holder keeps it)") {
    auto old = store.acquire();
    require_loaded(old);
    clock.advance(kTrustStoreMaxAge);
    auto fresh = store.acquire();
    require_loaded(fresh);
    REQUIRE(fresh.value().get() != old.value().get());
    // The store replaced by the reload is still whole (ASan would see a
    // use after free here if the reload had dropped the last reference).
    CHECK(certificates_in(old.value().get()) == 1);
}

TEST_CASE_FIXTURE(OneCaStore, "trust store: a clock set back reloads (the store's age is unknown)") {
    require_loaded(store.acquire());
    clock.advance(-Seconds{60});
    require_loaded(store.acquire());
    CHECK(store.loads() == 2);
    require_loaded(store.acquire());
    CHECK(store.loads() == 2);
}

TEST_CASE("trust store: unreadable CA file is a clear temporary failure naming the file") {
    TestCa ca;
    TempDir dir;
    const std::string path = dir.path() + "/missing-ca.pem";
    ManualClock clock;
    TrustStore store(with_ca_file(path), clock);
    auto r = store.acquire();
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-ca");
    CHECK(r.failure().temporary());
    CHECK(r.failure().reason == "cannot load trust store " + path + ": No such file or directory");
    CHECK(ERR_peek_error() == 0);  // nothing left for curl to misread
    CHECK(store.loads() == 0);

    // A failure is not kept: the file, once there, is used at once.
    write_file(path, read_file(ca.path()));
    require_loaded(store.acquire());
    CHECK(store.loads() == 1);
}

TEST_CASE("trust store: a garbage CA file is https-ca with the file and OpenSSL's reason") {
    TempDir dir;
    struct Row {
        const char* name;
        std::string text;
        const char* reason;
    };
    for (const Row& row :
         {Row{"text.pem", "this is not a certificate\n", "no certificate or crl found"},
          Row{"empty.pem", "", "no certificate or crl found"},
          Row{"bad-base64.pem",
              "-----BEGIN CERTIFICATE-----\nMIIB!!!not base64!!!\n-----END CERTIFICATE-----\n",
              "bad base64 decode"},
          Row{"binary.pem", std::string("\x30\x82\xff\xff\x00\x01\x02", 7),
              "no certificate or crl found"}}) {
        CAPTURE(row.name);
        const std::string path = dir.path() + "/" + row.name;
        write_file(path, row.text);
        ManualClock clock;
        TrustStore store(with_ca_file(path), clock);
        auto r = store.acquire();
        REQUIRE(r.failed());
        CHECK(r.failure().code == "https-ca");
        CHECK(r.failure().temporary());
        CHECK(r.failure().reason ==
              "cannot load trust store " + path + ": " + std::string(row.reason));
        CHECK(ERR_peek_error() == 0);
    }
}

TEST_CASE("trust store: a directory as ca_file, or a file as ca_dir, is refused naming it") {
    TestCa ca;
    TempDir dir;
    ManualClock clock;
    TrustStore as_file(with_ca_file(dir.path()), clock);
    auto f = as_file.acquire();
    REQUIRE(f.failed());
    CHECK(f.failure().code == "https-ca");
    CHECK(f.failure().reason.find("cannot load trust store " + dir.path() + ": is a directory") ==
          0);

    TrustStore as_dir(with_ca_dir(ca.path()), clock);
    auto d = as_dir.acquire();
    REQUIRE(d.failed());
    CHECK(d.failure().code == "https-ca");
    CHECK(d.failure().reason.find("cannot load trust store " + ca.path() + ": not a directory") ==
          0);

    TrustStore missing(with_ca_dir(dir.path() + "/no-such-dir"), clock);
    auto m = missing.acquire();
    REQUIRE(m.failed());
    CHECK(m.failure().reason ==
          "cannot load trust store " + dir.path() + "/no-such-dir: No such file or directory");
}

TEST_CASE_FIXTURE(OneCaStore, "trust store: a configured CA file replaces the system store") {
    auto r = store.acquire();
    require_loaded(r);
    CHECK(certificates_in(r.value().get()) == 1);  // the test CA, no system root
}

TEST_CASE("trust store: with nothing configured, the CA bundle libcurl was built with") {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    std::string bundle;
    {
        CurlEasyPtr curl(curl_easy_init());
        REQUIRE(curl);
        char* s = nullptr;
        if (curl_easy_getinfo(curl.get(), CURLINFO_CAINFO, &s) == CURLE_OK && s) bundle = s;
    }
    if (bundle.empty() || !std::filesystem::exists(bundle)) {
        MESSAGE("libcurl has no CA bundle file here (" << bundle << "): not tested");
        return;
    }
    std::size_t pem_certificates = 0;
    const std::string text = read_file(bundle);
    for (auto at = text.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
         at = text.find("-----BEGIN CERTIFICATE-----", at + 1)) {
        ++pem_certificates;
    }
    ManualClock clock;
    TrustStore store(FetchSettings{}, clock);
    auto r = store.acquire();
    require_loaded(r);
    CHECK(store.loads() == 1);
    const int n = certificates_in(r.value().get());
    CHECK(n > 0);
    CHECK(static_cast<std::size_t>(n) <= pem_certificates);  // duplicates are merged
}

TEST_CASE("trust store: a hashed CA directory is a lookup, read when a chain needs it") {
    TestCa ca;
    TempDir dir;
    ManualClock clock;
    TrustStore store(with_ca_dir(dir.path()), clock);
    auto r = store.acquire();
    require_loaded(r);
    CHECK(certificates_in(r.value().get()) == 0);  // nothing parsed up front
    CHECK(store.loads() == 1);
}
