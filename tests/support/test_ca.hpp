#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace nmid::test {

/// A certificate with its private key, both PEM.
struct Issued {
    std::string cert_pem{};
    std::string key_pem{};
};

/// A throwaway certificate authority generated at run time with the OpenSSL 3 API (EC P-256,
/// SHA-256, valid from an hour ago for a day). Tests that use it link OpenSSL (through
/// nmid_net). Throws std::runtime_error when OpenSSL fails (a test bug).
class TestCa {
public:
    explicit TestCa(const std::string& common_name = "nmid test CA");
    ~TestCa();
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    [[nodiscard]] const std::string& cert_pem() const { return cert_pem_; }
    [[nodiscard]] const std::string& key_pem() const { return key_pem_; }

    /// Server certificate (serverAuth) with these subjectAltNames; the CN is the first name.
    [[nodiscard]] Issued issue_server(const std::vector<std::string>& dns_names,
                                      const std::vector<std::string>& ip_addresses) const;
    /// Client certificate (clientAuth) with subject CN `common_name` (and O `organization`
    /// when not empty: Kubernetes reads groups from O).
    [[nodiscard]] Issued issue_client(const std::string& common_name,
                                      const std::string& organization = {}) const;

private:
    struct Keys;
    std::unique_ptr<Keys> keys_;
    std::string cert_pem_;
    std::string key_pem_;
};

/// The usual set: a CA, a server certificate for DNS `localhost` and IPs 127.0.0.1 and ::1,
/// and a client certificate with CN `nmid-test-client`.
struct TestPki {
    TestPki();
    TestCa ca;
    Issued server;
    Issued client;
};

/// A process-wide TestPki (generated once: key generation is the slow part).
[[nodiscard]] const TestPki& test_pki();

/// A fresh temporary directory, removed with everything in it on destruction.
class PemDir {
public:
    PemDir();
    ~PemDir();
    PemDir(const PemDir&) = delete;
    PemDir& operator=(const PemDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const { return path_; }
    /// Writes `content` to `path()/name` (replacing it) and returns the full path.
    std::filesystem::path write(const std::string& name, const std::string& content) const;
    /// Writes ca.crt, server.crt, server.key, client.crt and client.key from `pki`.
    void write_pki(const TestPki& pki) const;

private:
    std::filesystem::path path_;
};

}  // namespace nmid::test
