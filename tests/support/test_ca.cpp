#include "support/test_ca.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <stdexcept>

namespace nmid::test {

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
    void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

void check(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error{std::string{"test CA: "} + what};
    }
}

Pkey make_key() {
    Pkey key{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
    check(key != nullptr, "EC key generation");
    return key;
}

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string{data, static_cast<std::size_t>(n)};
}

std::string cert_to_pem(X509* cert) {
    Bio bio{BIO_new(BIO_s_mem())};
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
    return bio_string(bio.get());
}

std::string key_to_pem(EVP_PKEY* key) {
    Bio bio{BIO_new(BIO_s_mem())};
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    return bio_string(bio.get());
}

void add_name(X509_NAME* name, const char* field, const std::string& value) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                     0) == 1,
          "X509_NAME_add_entry_by_txt");
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    const int added = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    check(added == 1, "X509_add_ext");
}

std::atomic<long> next_serial{1};

/// A certificate for `key` named `subject`, not yet signed; `issuer` null: self-issued.
Cert make_cert(EVP_PKEY* key, X509* issuer, const std::string& cn, const std::string& org) {
    Cert cert{X509_new()};
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), next_serial++) == 1, "serial");
    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr, "notAfter");
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    if (!org.empty()) {
        add_name(name, "O", org);
    }
    add_name(name, "CN", cn);
    check(X509_set_issuer_name(cert.get(),
                               issuer != nullptr ? X509_get_subject_name(issuer) : name) == 1,
          "X509_set_issuer_name");
    return cert;
}

}  // namespace

struct TestCa::Keys {
    Pkey key;
    Cert cert;
};

TestCa::TestCa(const std::string& common_name) : keys_{std::make_unique<Keys>()} {
    keys_->key = make_key();
    keys_->cert = make_cert(keys_->key.get(), nullptr, common_name, {});
    X509* cert = keys_->cert.get();
    add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(cert, cert, NID_subject_key_identifier, "hash");
    add_ext(cert, cert, NID_authority_key_identifier, "keyid:always");
    check(X509_sign(cert, keys_->key.get(), EVP_sha256()) > 0, "X509_sign (CA)");
    cert_pem_ = cert_to_pem(cert);
    key_pem_ = key_to_pem(keys_->key.get());
}

TestCa::~TestCa() = default;

Issued TestCa::issue_server(const std::vector<std::string>& dns_names,
                            const std::vector<std::string>& ip_addresses) const {
    Pkey key = make_key();
    const std::string cn = !dns_names.empty()      ? dns_names.front()
                           : !ip_addresses.empty() ? ip_addresses.front()
                                                   : std::string{"server"};
    Cert cert = make_cert(key.get(), keys_->cert.get(), cn, {});
    std::string san;
    for (const auto& dns : dns_names) {
        san += (san.empty() ? "" : ",") + std::string{"DNS:"} + dns;
    }
    for (const auto& ip : ip_addresses) {
        san += (san.empty() ? "" : ",") + std::string{"IP:"} + ip;
    }
    add_ext(cert.get(), keys_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), keys_->cert.get(), NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), keys_->cert.get(), NID_ext_key_usage, "serverAuth");
    if (!san.empty()) {
        add_ext(cert.get(), keys_->cert.get(), NID_subject_alt_name, san);
    }
    add_ext(cert.get(), keys_->cert.get(), NID_subject_key_identifier, "hash");
    add_ext(cert.get(), keys_->cert.get(), NID_authority_key_identifier, "keyid:always");
    check(X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) > 0, "X509_sign (server)");
    return Issued{cert_to_pem(cert.get()), key_to_pem(key.get())};
}

Issued TestCa::issue_client(const std::string& common_name, const std::string& organization) const {
    Pkey key = make_key();
    Cert cert = make_cert(key.get(), keys_->cert.get(), common_name, organization);
    add_ext(cert.get(), keys_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), keys_->cert.get(), NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), keys_->cert.get(), NID_ext_key_usage, "clientAuth");
    add_ext(cert.get(), keys_->cert.get(), NID_subject_key_identifier, "hash");
    add_ext(cert.get(), keys_->cert.get(), NID_authority_key_identifier, "keyid:always");
    check(X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) > 0, "X509_sign (client)");
    return Issued{cert_to_pem(cert.get()), key_to_pem(key.get())};
}

TestPki::TestPki()
    : server{ca.issue_server({"localhost"}, {"127.0.0.1", "::1"})},
      client{ca.issue_client("nmid-test-client", "nmid-testers")} {}

const TestPki& test_pki() {
    static const TestPki pki;
    return pki;
}

PemDir::PemDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "nmid-pem-XXXXXX").string();
    check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
}

PemDir::~PemDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path PemDir::write(const std::string& name, const std::string& content) const {
    auto file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream out{file, std::ios::binary | std::ios::trunc};
    out << content;
    out.close();
    check(static_cast<bool>(out), "writing a PEM file");
    return file;
}

void PemDir::write_pki(const TestPki& pki) const {
    write("ca.crt", pki.ca.cert_pem());
    write("server.crt", pki.server.cert_pem);
    write("server.key", pki.server.key_pem);
    write("client.crt", pki.client.cert_pem);
    write("client.key", pki.client.key_pem);
}

}  // namespace nmid::test
